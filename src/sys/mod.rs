//! Thin wrappers around the syscalls the daemon needs: the TAP device,
//! AF_PACKET sockets, bpf(2), ethtool ioctls, setsockopt, flock, getrandom.
//! Each `unsafe` block here has its `// SAFETY:` reason; callers get safe
//! functions. `sysctl` (files under /proc/sys) and `notify` (one datagram)
//! need no `unsafe` (notify's test sets the environment, which is).
//!
//! Failures worth telling apart have typed errors ([`sysctl::SysctlError`],
//! [`bpf::TcxError`], [`tap::TapError`], [`packet::SendError`]); elsewhere
//! the `io::Error` is the syscall's own, or wraps a [`packet::SetupError`]
//! naming the member socket's failed step.

pub mod bpf;
pub mod cbpf;
pub mod ethtool;
pub mod notify;
pub mod packet;
pub mod probesock;
pub mod sysctl;
pub mod tap;

use std::io;

/// Turns a -1 syscall return into the thread's errno.
pub(crate) fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

pub(crate) fn cvt_size(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// setsockopt(2) with a typed value, on any open socket (ours, or the
/// netlink crate's).
pub(crate) fn setsockopt<T>(
    fd: &impl std::os::fd::AsFd,
    level: libc::c_int,
    name: libc::c_int,
    v: &T,
) -> io::Result<()> {
    // SAFETY: v points to a live T and its exact size is passed; the
    // descriptor is borrowed, so it stays open for the call.
    cvt(unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&fd.as_fd()),
            level,
            name,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// Whether the process holds a capability in its effective set (read from
/// /proc so no libcap is needed).
pub fn has_capability(cap: u32) -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|bits| bits & (1u64 << cap) != 0)
}

/// The effective uid (owner required of the run directory and its files).
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Takes an exclusive flock on `fd` without waiting: `Ok(false)` when
/// another open file description holds it. Released when the fd closes.
pub fn try_lock_exclusive(fd: &impl std::os::fd::AsRawFd) -> io::Result<bool> {
    // SAFETY: flock only reads the descriptor number; it is open for the
    // lifetime of the borrow.
    let r = unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_NET_RAW: u32 = 13;
pub const CAP_BPF: u32 = 39;
pub const CAP_SYS_ADMIN: u32 = 21;

/// Cryptographically random 64 bits (the flow-hash seed).
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most b.len() bytes into the valid buffer.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != 8 {
        // Only before the entropy pool is ready on early boot; the seed only
        // spreads flows, so a time-based one is an acceptable fallback.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        return t ^ u64::from(std::process::id()) << 32;
    }
    u64::from_ne_bytes(b)
}

/// Fills `buf` from getrandom(2), blocking until the entropy pool is ready;
/// an error rather than any weaker fallback (the key of probe tags).
pub fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: getrandom writes at most rest.len() bytes into the valid buffer.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        match cvt_size(n) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "getrandom returned nothing",
                ))
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod testns {
    /// Runs `f` on a thread that has its own fresh network namespace, so the
    /// test touches no interface outside it.
    pub fn in_new_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::spawn(move || {
            unshare_net();
            f()
        })
        .join()
        .expect("test thread panicked")
    }

    /// Moves the calling thread (and the children it spawns) to a fresh
    /// network namespace.
    pub fn unshare_net() {
        // SAFETY: plain syscall without pointers; CLONE_NEWNET only moves
        // the calling thread to a new namespace.
        let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "unshare(CLONE_NEWNET): {}", std::io::Error::last_os_error());
    }

    /// The calling thread's id (its namespace is /proc/<pid>/task/<tid>/ns/net).
    pub fn gettid() -> libc::pid_t {
        // SAFETY: gettid has no arguments and cannot fail.
        unsafe { libc::gettid() }
    }

    pub fn sh(cmd: &str) {
        let st = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .status()
            .unwrap();
        assert!(st.success(), "{cmd}");
    }

    /// Waits until `name` is operationally up: a veth's qdisc is attached
    /// only then (by the kernel's link watcher, asynchronously), and a frame
    /// sent before is dropped.
    pub fn wait_up(name: &str) {
        const WAIT_UP_TRIES: u32 = 500;
        for _ in 0..WAIT_UP_TRIES {
            let out = std::process::Command::new("ip")
                .args(["-o", "link", "show", "dev", name])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&out.stdout).contains("state UP") {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("{name} not up");
    }

    pub fn ifindex(name: &str) -> u32 {
        let c = std::ffi::CString::new(name).unwrap();
        // SAFETY: c is a valid NUL-terminated string.
        unsafe { libc::if_nametoindex(c.as_ptr()) }
    }
}
