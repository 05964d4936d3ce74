//! The per-group control socket, `<run dir>/<group>.sock`: one JSON request
//! line and one JSON response line per connection (`probes` then streams).
//! This is the client side and what both sides share; the daemon's side is
//! [`super::server`]. The peer's credentials come from SO_PEERCRED, never
//! from anything it sends.

use super::{Envelope, Reply, Request};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a client waits for the daemon's reply.
const REPLY_WAIT: Duration = Duration::from_secs(5);

pub fn socket_path(run_dir: &Path, group: &str) -> PathBuf {
    run_dir.join(format!("{group}.sock"))
}

/// The peer's uid (SO_PEERCRED).
pub fn peer_uid(fd: std::os::fd::RawFd) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred and len are valid for writes of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    crate::sys::cvt(r)?;
    Ok(cred.uid)
}

/// One request line, newline included.
fn request_line(req: &Request) -> io::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(&Envelope::new(req)).map_err(io::Error::other)?;
    line.push(b'\n');
    Ok(line)
}

/// Client side of a streaming command: the response, then the stream of
/// lines that follows it (Ok(Err) carries the daemon's refusal).
pub fn open_stream(path: &Path, req: &Request) -> io::Result<Result<UnixStream, String>> {
    let stream = UnixStream::connect(path)?;
    (&stream).write_all(&request_line(req)?)?;
    // Read the response line byte by byte so nothing after it is consumed.
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while std::io::Read::read(&mut &stream, &mut b)? == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    let resp: Envelope<Reply> =
        serde_json::from_slice(&line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(match resp.body {
        Reply::Error(e) => Err(e),
        Reply::Done | Reply::Status(_) => Ok(stream),
    })
}

/// Client side: one request, one response.
pub fn request(path: &Path, req: &Request) -> io::Result<Reply> {
    let stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(REPLY_WAIT))?;
    (&stream).write_all(&request_line(req)?)?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    serde_json::from_str::<Envelope<Reply>>(&line)
        .map(|e| e.body)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
