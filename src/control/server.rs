//! The daemon's side of the control socket, as non-blocking sources of the
//! control loop: nothing a local client does (connect and say nothing,
//! dribble a byte at a time, send an endless line, never read its answer,
//! open hundreds of connections) can hold the loop that runs failover.
//!
//! Every connection is bounded: one request line of at most
//! [`MAX_REQUEST_LINE`] bytes, which must arrive within [`REQUEST_TIMEOUT`];
//! its answer must be taken within [`REPLY_TIMEOUT`]; at most
//! [`MAX_CLIENTS`] connections and [`MAX_WATCHERS`] `ipmpstat -p` streams,
//! each of which may lag by at most [`MAX_WATCH_BACKLOG`] bytes.

use super::socket::{peer_uid, socket_path};
use super::{parse_request, Envelope, Reply, Request};
use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Socket file mode: root and its group may talk to the daemon.
const SOCKET_MODE: u32 = 0o660;
/// With status readable by everyone: anyone may connect, only root may change.
const SOCKET_MODE_WORLD: u32 = 0o666;
/// A request is one JSON line; the longest legitimate one is ~100 bytes.
pub const MAX_REQUEST_LINE: usize = 4096;
/// Connections open at once (requests in flight and watchers together).
pub const MAX_CLIENTS: usize = 32;
/// Further connections only root may open, so no other local user can
/// lock the administrator out of `ipmpadm` by holding every connection.
pub const ROOT_RESERVE: usize = 4;
/// Connections accepted per wake-up; more waiting are taken on the next
/// turn of the control loop, after the group's own work.
const ACCEPTS_PER_TURN: usize = 16;
/// `ipmpstat -p` streams open at once.
pub const MAX_WATCHERS: usize = 8;
/// From connect to a complete request line; a slower client is closed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// From the answer to the client having taken all of it.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Probe lines a watcher may leave unread before it is dropped.
pub const MAX_WATCH_BACKLOG: usize = 256 * 1024;
/// Bytes read from a socket per call.
const READ_CHUNK: usize = 1024;

/// A connection, as the daemon refers to it when it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientId(usize);

/// A complete request from a client (or why its line was not one).
#[derive(Debug)]
pub struct Incoming {
    pub id: ClientId,
    /// From SO_PEERCRED, never from anything the client sent.
    pub uid: u32,
    pub request: Result<Envelope<Request>, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the request line.
    Reading,
    /// The answer is queued; closed once it is written.
    Replying,
    /// An `ipmpstat -p` stream: probe lines until either side closes.
    Watching,
}

struct Conn {
    stream: UnixStream,
    uid: u32,
    phase: Phase,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    /// When the current phase must be over (none for watchers).
    deadline: Option<Instant>,
}

pub struct Server {
    listener: UnixListener,
    listener_token: Token,
    /// Connection `i` is registered as `Token(first_token + i)`.
    first_token: usize,
    conns: Vec<Option<Conn>>,
    registry: Registry,
    path: PathBuf,
    /// The listener had more connections waiting than one turn accepts.
    accept_pending: bool,
}

impl Server {
    /// Binds `<run dir>/<group>.sock` and registers it with the control
    /// loop: the listener as `listener_token`, connections from
    /// `first_token` up to `first_token + MAX_CLIENTS`.
    pub fn bind(
        run_dir: &Path,
        group: &str,
        world_readable: bool,
        registry: &Registry,
        listener_token: Token,
        first_token: usize,
    ) -> io::Result<Server> {
        let path = socket_path(run_dir, group);
        remove_stale_socket(&path)?;
        let mut listener = UnixListener::bind(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("binding {}: {e}", path.display())))?;
        let mode = if world_readable {
            SOCKET_MODE_WORLD
        } else {
            SOCKET_MODE
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
        registry.register(&mut listener, listener_token, Interest::READABLE)?;
        Ok(Server {
            listener,
            listener_token,
            first_token,
            conns: (0..MAX_CLIENTS + ROOT_RESERVE).map(|_| None).collect(),
            registry: registry.try_clone()?,
            path,
            accept_pending: false,
        })
    }

    /// Whether a poll event belongs to the control socket.
    pub fn owns(&self, token: Token) -> bool {
        token == self.listener_token
            || (self.first_token..self.first_token + MAX_CLIENTS + ROOT_RESERVE).contains(&token.0)
    }

    /// Handles one poll event of the control socket; returns the requests
    /// that became complete. Never blocks.
    pub fn on_event(&mut self, token: Token, now: Instant) -> Vec<Incoming> {
        let mut out = Vec::new();
        if token == self.listener_token {
            self.accept_some(now, &mut out);
        } else if let Some(i) = token.0.checked_sub(self.first_token) {
            self.service(i, &mut out);
        }
        out
    }

    /// Queues the answer to a request. With `watch`, the connection stays
    /// open for [`Server::broadcast`] lines (up to [`MAX_WATCHERS`]).
    pub fn reply(&mut self, id: ClientId, resp: &Reply, watch: bool, now: Instant) {
        let watching = self.watchers();
        let Some(c) = self.conns.get_mut(id.0).and_then(Option::as_mut) else {
            return;
        };
        let refused;
        let resp = if watch && watching >= MAX_WATCHERS {
            refused = Reply::error(format!("too many probe watchers (at most {MAX_WATCHERS})"));
            &refused
        } else {
            resp
        };
        let keep = watch && resp.ok();
        let Ok(mut line) = serde_json::to_vec(&Envelope::new(resp)) else {
            return self.close(id.0);
        };
        line.push(b'\n');
        c.out.extend_from_slice(&line);
        c.inbuf = Vec::new();
        if keep {
            c.phase = Phase::Watching;
            c.deadline = None;
        } else {
            c.phase = Phase::Replying;
            c.deadline = Some(now + REPLY_TIMEOUT);
        }
        self.flush(id.0);
    }

    /// Whether any `ipmpstat -p` stream is open.
    pub fn has_watchers(&self) -> bool {
        self.watchers() > 0
    }

    /// Sends a line to every watcher; one that lags too far is dropped.
    pub fn broadcast(&mut self, line: &[u8]) {
        for i in 0..self.conns.len() {
            let Some(c) = self.conns[i].as_mut().filter(|c| c.phase == Phase::Watching) else {
                continue;
            };
            if c.out.len() + line.len() > MAX_WATCH_BACKLOG {
                log::info!("dropping an ipmpstat -p client that does not keep up");
                self.close(i);
                continue;
            }
            c.out.extend_from_slice(line);
            self.flush(i);
        }
    }

    /// Whether connections are still waiting to be accepted: the control
    /// loop then polls without sleeping and calls [`Server::resume`].
    pub fn busy(&self) -> bool {
        self.accept_pending
    }

    /// Accepts more of the connections left waiting by the last turn.
    pub fn resume(&mut self, now: Instant) -> Vec<Incoming> {
        let mut out = Vec::new();
        if self.accept_pending {
            self.accept_some(now, &mut out);
        }
        out
    }

    /// Closes connections whose request or reply is overdue.
    pub fn expire(&mut self, now: Instant) {
        for i in 0..self.conns.len() {
            if self.conns[i]
                .as_ref()
                .and_then(|c| c.deadline)
                .is_some_and(|d| d <= now)
            {
                log::debug!("control client {i} too slow; closed");
                self.close(i);
            }
        }
    }

    /// The earliest deadline of an open connection.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.conns.iter().flatten().filter_map(|c| c.deadline).min()
    }

    fn watchers(&self) -> usize {
        self.conns
            .iter()
            .flatten()
            .filter(|c| c.phase == Phase::Watching)
            .count()
    }

    /// Accepts up to [`ACCEPTS_PER_TURN`] connections and reads what the new
    /// ones already sent.
    fn accept_some(&mut self, now: Instant, out: &mut Vec<Incoming>) {
        self.accept_pending = false;
        for _ in 0..ACCEPTS_PER_TURN {
            let mut stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return log::warn!("control socket accept: {e}"),
            };
            let uid = match peer_uid(stream.as_raw_fd()) {
                Ok(u) => u,
                Err(e) => {
                    log::debug!("control client credentials: {e}");
                    continue;
                }
            };
            // Everyone shares MAX_CLIENTS; root also has ROOT_RESERVE more.
            let others = self.conns.iter().flatten().filter(|c| c.uid != 0).count();
            let free = self.conns.iter().position(Option::is_none);
            let Some(i) = free.filter(|_| uid == 0 || others < MAX_CLIENTS) else {
                log::debug!("control socket: too many clients; refusing one of uid {uid}");
                // Best effort: the socket is non-blocking and a fresh
                // socket buffer takes one short line.
                if let Ok(mut line) = serde_json::to_vec(&Envelope::new(Reply::error(format!(
                    "too many control clients (at most {MAX_CLIENTS})"
                )))) {
                    line.push(b'\n');
                    let _ = stream.write(&line);
                }
                continue;
            };
            let token = Token(self.first_token + i);
            if let Err(e) =
                self.registry
                    .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
            {
                log::warn!("control client registration: {e}");
                continue;
            }
            self.conns[i] = Some(Conn {
                stream,
                uid,
                phase: Phase::Reading,
                inbuf: Vec::new(),
                out: Vec::new(),
                deadline: Some(now + REQUEST_TIMEOUT),
            });
            // A client may have sent its request before the accept.
            self.service(i, out);
        }
        // Edge-triggered: the rest would not be reported again.
        self.accept_pending = true;
    }

    /// Reads what is there and writes what is queued, without blocking.
    fn service(&mut self, i: usize, out: &mut Vec<Incoming>) {
        let Some(c) = self.conns.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        // While reading the request: until the socket is drained
        // (edge-triggered), the line is complete, or it is over the cap.
        // After it: nothing is read while the answer is written, and a
        // watcher gets one read, which tells whether it closed; a watcher
        // that sends anything more is closed. Either way bounded.
        let mut buf = [0u8; READ_CHUNK];
        let mut closed = false;
        match c.phase {
            Phase::Reading => loop {
                match c.stream.read(&mut buf) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => {
                        c.inbuf.extend_from_slice(&buf[..n]);
                        if let Some(end) = c.inbuf.iter().position(|&b| b == b'\n') {
                            c.inbuf.truncate(end);
                            let request = parse_request(&c.inbuf);
                            c.phase = Phase::Replying;
                            c.deadline = None;
                            out.push(Incoming {
                                id: ClientId(i),
                                uid: c.uid,
                                request,
                            });
                            break;
                        }
                        if c.inbuf.len() > MAX_REQUEST_LINE {
                            log::debug!("control client {i}: request over {MAX_REQUEST_LINE} bytes; closed");
                            let mut line = serde_json::to_vec(&Envelope::new(Reply::error(format!(
                                "request longer than {MAX_REQUEST_LINE} bytes"
                            ))))
                            .unwrap_or_default();
                            line.push(b'\n');
                            let _ = c.stream.write(&line);
                            return self.close(i);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
            },
            Phase::Replying => {}
            Phase::Watching => match c.stream.read(&mut buf) {
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                // Closed, an error, or input it had no business sending.
                _ => closed = true,
            },
        }
        // A peer that closed its side before its request was answered has
        // nobody to answer; a watcher that closed is gone.
        if closed && c.phase != Phase::Replying {
            return self.close(i);
        }
        self.flush(i);
    }

    /// Writes queued output; a finished reply closes the connection.
    fn flush(&mut self, i: usize) {
        let Some(c) = self.conns.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        while !c.out.is_empty() {
            match c.stream.write(&c.out) {
                Ok(0) => return self.close(i),
                Ok(n) => {
                    c.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.close(i),
            }
        }
        // Replying with a deadline set means the answer was queued.
        if c.phase == Phase::Replying && c.deadline.is_some() {
            self.close(i);
        }
    }

    fn close(&mut self, i: usize) {
        if let Some(mut c) = self.conns.get_mut(i).and_then(Option::take) {
            let _ = self.registry.deregister(&mut c.stream);
        }
    }
}

/// A leftover from a daemon that died: the pid lock made sure no live
/// daemon owns this group, and the start refused the path unless it is a
/// socket of our own (`daemon::rundir::check_entry`).
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io::Error::new(
            e.kind(),
            format!("removing stale socket {}: {e}", path.display()),
        )),
        _ => Ok(()),
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
