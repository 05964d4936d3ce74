//! The per-group control socket: `<run dir>/<group>.sock`, mode 0660, one
//! JSON request line and one JSON response line per connection. The peer's
//! credentials come from SO_PEERCRED, never from anything it sends.

use super::{Request, Response, MAX_REQUEST_LEN, PROTOCOL_VERSION};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Socket file mode: root and its group may talk to the daemon.
const SOCKET_MODE: u32 = 0o660;
/// With status readable by everyone: anyone may connect, only root may change.
const SOCKET_MODE_WORLD: u32 = 0o666;
/// A client must send its request at once; the control loop never waits longer.
const CLIENT_TIMEOUT: Duration = Duration::from_millis(200);

pub fn socket_path(run_dir: &Path, group: &str) -> PathBuf {
    run_dir.join(format!("{group}.sock"))
}

/// The listening socket; removes its file on drop.
pub struct ControlSocket {
    pub listener: UnixListener,
    path: PathBuf,
}

impl ControlSocket {
    pub fn bind(run_dir: &Path, group: &str, world_readable: bool) -> io::Result<ControlSocket> {
        let path = socket_path(run_dir, group);
        // A leftover from a daemon that died: the pid file check already
        // made sure no live daemon owns this group.
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("binding {}: {e}", path.display())))?;
        let mode = if world_readable {
            SOCKET_MODE_WORLD
        } else {
            SOCKET_MODE
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
        listener.set_nonblocking(true)?;
        Ok(ControlSocket { listener, path })
    }

    /// Every client waiting, with its request read (or why it could not be).
    pub fn pending(&self) -> Vec<Client> {
        let mut out = Vec::new();
        while let Ok((stream, _)) = self.listener.accept() {
            match read_request(&stream) {
                Ok((uid, request)) => out.push(Client { stream, uid, request }),
                Err(e) => log::debug!("control client: {e}"),
            }
        }
        out
    }
}

/// A connected client and what it asked.
pub struct Client {
    stream: UnixStream,
    /// From SO_PEERCRED.
    pub uid: u32,
    pub request: Result<Request, String>,
}

impl Client {
    /// Replies and keeps the connection for a stream of further lines.
    pub fn reply_and_keep(self, resp: &Response) -> Option<UnixStream> {
        let stream = self.stream.try_clone().ok()?;
        self.reply(resp);
        stream.set_nonblocking(true).ok()?;
        Some(stream)
    }

    pub fn reply(self, resp: &Response) {
        let mut out = match serde_json::to_string(resp) {
            Ok(s) => s,
            Err(e) => return log::warn!("control reply: {e}"),
        };
        out.push('\n');
        if let Err(e) = (&self.stream).write_all(out.as_bytes()) {
            log::debug!("control reply: {e}");
        }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The peer's uid (SO_PEERCRED).
pub fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred and len are valid for writes of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    crate::sys::cvt(r)?;
    Ok(cred.uid)
}

fn read_request(stream: &UnixStream) -> io::Result<(u32, Result<Request, String>)> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let uid = peer_uid(stream)?;
    let mut line = Vec::new();
    // One byte past the limit, so an over-long line is refused, not cut.
    BufReader::new(stream.take(MAX_REQUEST_LEN as u64 + 1)).read_until(b'\n', &mut line)?;
    let req = super::parse_request(&line);
    Ok((uid, req))
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
