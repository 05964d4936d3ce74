//! The per-group control socket, `<run dir>/<group>.sock`: one JSON request
//! line and one JSON response line per connection (`probes` then streams).
//! This is the client side and what both sides share; the daemon's side is
//! [`super::server`]. The peer's credentials come from SO_PEERCRED, never
//! from anything it sends.

use super::{Request, Response, PROTOCOL_VERSION};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// A refusal or error response.
pub fn error(msg: String) -> Response {
    Response {
        version: PROTOCOL_VERSION,
        ok: false,
        error: Some(msg),
        status: None,
    }
}

/// Client side of a streaming command: the response, then the stream of
/// lines that follows it (Ok(Err) carries the daemon's refusal).
pub fn open_stream(path: &Path, command: &str) -> io::Result<Result<UnixStream, String>> {
    let stream = UnixStream::connect(path)?;
    let req = serde_json::to_string(&Request {
        version: PROTOCOL_VERSION,
        command: command.to_string(),
        args: Vec::new(),
    })
    .map_err(io::Error::other)?;
    (&stream).write_all(format!("{req}\n").as_bytes())?;
    // Read the response line byte by byte so nothing after it is consumed.
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while std::io::Read::read(&mut &stream, &mut b)? == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    let resp: Response =
        serde_json::from_slice(&line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(if resp.ok {
        Ok(stream)
    } else {
        Err(resp.error.unwrap_or_default())
    })
}

/// Client side: one request, one response.
pub fn request(path: &Path, command: &str, args: &[&str]) -> io::Result<Response> {
    let stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let req = serde_json::to_string(&Request {
        version: PROTOCOL_VERSION,
        command: command.to_string(),
        args: args.iter().map(|a| a.to_string()).collect(),
    })
    .map_err(io::Error::other)?;
    (&stream).write_all(format!("{req}\n").as_bytes())?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
