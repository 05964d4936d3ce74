//! Misbehaving control-socket clients, for the tests and the failover
//! benchmark (`examples/ctlhostile.rs`): they show that no local client
//! can hold the control loop. Local only: they connect to a Unix socket.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Hostile clients that reconnect whenever the daemon closes them, until
/// `stop`. Counts how often the daemon closed one.
pub struct Hostile {
    stop: Arc<AtomicBool>,
    /// Closes by the daemon, per kind (idle, dribble, endless, refused).
    closed: Arc<[AtomicU32; KINDS]>,
    threads: Vec<thread::JoinHandle<()>>,
}

#[derive(Clone, Copy)]
#[repr(usize)]
pub enum Kind {
    /// Connects and says nothing.
    Idle,
    /// One byte every 150 ms, never a newline.
    Dribble,
    /// An endless line, as fast as the socket takes it.
    Endless,
    /// Well-formed JSON the daemon must refuse: an unknown command, a
    /// wrong operand or another protocol version, in turn; reads the answer.
    Refused,
}

/// How many kinds there are.
const KINDS: usize = 4;

/// The requests [`Kind::Refused`] sends, in turn.
const REFUSED: [&[u8]; 3] = [
    b"{\"version\":1,\"command\":\"bogus\"}\n",
    b"{\"version\":1,\"command\":\"standby\",\"args\":[\"e0\",\"maybe\"]}\n",
    b"{\"version\":999,\"command\":\"status\"}\n",
];

impl Hostile {
    pub fn start(path: PathBuf, kinds: &[(Kind, usize)]) -> Hostile {
        let stop = Arc::new(AtomicBool::new(false));
        let closed = Arc::new([(); KINDS].map(|_| AtomicU32::new(0)));
        let mut threads = Vec::new();
        for &(kind, n) in kinds {
            for _ in 0..n {
                let (stop, closed, path) = (stop.clone(), closed.clone(), path.clone());
                threads.push(thread::spawn(move || {
                    let mut turn = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(mut s) = UnixStream::connect(&path) else {
                            thread::sleep(Duration::from_millis(50));
                            continue;
                        };
                        s.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
                        s.set_read_timeout(Some(Duration::from_millis(150))).unwrap();
                        let chunk = [b'a'; 512];
                        let mut buf = [0u8; 256];
                        if matches!(kind, Kind::Refused) {
                            turn += 1;
                            if s.write_all(REFUSED[turn % REFUSED.len()]).is_err() {
                                continue;
                            }
                        }
                        loop {
                            if stop.load(Ordering::Relaxed) {
                                return;
                            }
                            let alive = match kind {
                                Kind::Idle => !matches!(s.read(&mut buf), Ok(0)),
                                Kind::Dribble => {
                                    thread::sleep(Duration::from_millis(150));
                                    s.write_all(b"{").is_ok()
                                }
                                Kind::Endless => match s.write(&chunk) {
                                    Ok(_) => true,
                                    Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
                                },
                                // The answer, then the daemon closes.
                                Kind::Refused => match s.read(&mut buf) {
                                    Ok(n) => n > 0,
                                    Err(e) => matches!(
                                        e.kind(),
                                        std::io::ErrorKind::WouldBlock
                                            | std::io::ErrorKind::TimedOut
                                            | std::io::ErrorKind::Interrupted
                                    ),
                                },
                            };
                            if !alive {
                                closed[kind as usize].fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                        }
                    }
                }));
            }
        }
        Hostile {
            stop,
            closed,
            threads,
        }
    }

    pub fn closed(&self, kind: Kind) -> u32 {
        self.closed[kind as usize].load(Ordering::Relaxed)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
