//! The per-group control socket: `<run dir>/<group>.sock`, mode 0660, one
//! JSON request line and one JSON response line per connection. The peer's
//! credentials come from SO_PEERCRED, never from anything it sends.

use super::{GroupStatus, Request, Response, PROTOCOL_VERSION};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Socket file mode: root and its group may talk to the daemon.
const SOCKET_MODE: u32 = 0o660;
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
    pub fn bind(run_dir: &Path, group: &str) -> io::Result<ControlSocket> {
        let path = socket_path(run_dir, group);
        // A leftover from a daemon that died: the pid file check already
        // made sure no live daemon owns this group.
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("binding {}: {e}", path.display())))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(SOCKET_MODE))?;
        listener.set_nonblocking(true)?;
        Ok(ControlSocket { listener, path })
    }

    /// Answers every pending client.
    pub fn serve(&self, status: impl Fn() -> GroupStatus) {
        while let Ok((stream, _)) = self.listener.accept() {
            if let Err(e) = answer(stream, &status) {
                log::debug!("control client: {e}");
            }
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

fn answer(stream: UnixStream, status: &impl Fn() -> GroupStatus) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let uid = peer_uid(&stream)?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let resp = match serde_json::from_str::<Request>(&line) {
        Err(e) => error(format!("malformed request: {e}")),
        Ok(r) if r.version != PROTOCOL_VERSION => error(format!(
            "protocol version {} not supported (this ipmpd speaks {PROTOCOL_VERSION})",
            r.version
        )),
        Ok(r) if r.command == "status" => Response {
            version: PROTOCOL_VERSION,
            ok: true,
            error: None,
            status: Some(status()),
        },
        Ok(r) => error(format!("unknown command {:?} (from uid {uid})", r.command)),
    };
    let mut out = serde_json::to_string(&resp).map_err(io::Error::other)?;
    out.push('\n');
    (&stream).write_all(out.as_bytes())
}

fn error(msg: String) -> Response {
    Response {
        version: PROTOCOL_VERSION,
        ok: false,
        error: Some(msg),
        status: None,
    }
}

/// Client side: one request, one response.
pub fn request(path: &Path, command: &str) -> io::Result<Response> {
    let stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let req = serde_json::to_string(&Request {
        version: PROTOCOL_VERSION,
        command: command.to_string(),
    })
    .map_err(io::Error::other)?;
    (&stream).write_all(format!("{req}\n").as_bytes())?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
