//! The group interface: a TAP device opened with virtio-net headers so
//! checksum and GSO state cross the daemon intact.

use super::{cvt, cvt_size};
use crate::wire::virtio::HEADER_LEN as VNET_HDR_LEN;
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use thiserror::Error;

/// Why the group interface could not be created or configured.
#[derive(Debug, Error)]
pub enum TapError {
    #[error("interface name {name:?} must be 1 to {max} bytes", max = libc::IFNAMSIZ - 1)]
    BadName { name: String },
    #[error("opening /dev/net/tun: {0}")]
    Open(#[source] io::Error),
    #[error("creating TAP device {name}: {source}")]
    Create {
        name: String,
        #[source]
        source: io::Error,
    },
    /// A TUN ioctl (TUNSETVNETHDRSZ, TUNSETOFFLOAD, TUNSETCARRIER) failed.
    #[error("{op} on {name}: {source}")]
    Ioctl {
        op: &'static str,
        name: String,
        #[source]
        source: io::Error,
    },
}

impl TapError {
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            TapError::BadName { .. } => io::ErrorKind::InvalidInput,
            TapError::Open(source) | TapError::Create { source, .. } | TapError::Ioctl { source, .. } => {
                source.kind()
            }
        }
    }
}

/// For callers that work in `io::Result`: same text and kind.
impl From<TapError> for io::Error {
    fn from(e: TapError) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}

/// `struct ifreq` as TUNSETIFF reads it: the name and the flags.
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Offloads the TAP accepts from us (frames we write into it) — everything a
/// packet socket can hand us from a member with GRO on.
const OFFLOADS: libc::c_uint = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6 | libc::TUN_F_TSO_ECN;
const OFFLOADS_USO: libc::c_uint = libc::TUN_F_USO4 | libc::TUN_F_USO6;

pub struct Tap {
    fd: OwnedFd,
    name: String,
}

impl Tap {
    /// Creates a non-persistent TAP device without carrier: it exists while
    /// the descriptor is open and vanishes with it, even on a crash.
    pub fn create(name: &str) -> Result<Tap, TapError> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            return Err(TapError::BadName {
                name: name.to_string(),
            });
        }
        let path = c"/dev/net/tun";
        // SAFETY: path is a valid NUL-terminated string; open has no other preconditions.
        let raw =
            cvt(unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK) })
                .map_err(TapError::Open)?;
        // SAFETY: raw is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR | libc::IFF_NO_CARRIER)
                as libc::c_short,
            _pad: [0; 22],
        };
        for (d, s) in req.name.iter_mut().zip(name.bytes()) {
            *d = s as libc::c_char;
        }
        // SAFETY: TUNSETIFF reads and writes one ifreq, which `req` is.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) };
        if r < 0 {
            return Err(TapError::Create {
                name: name.to_string(),
                source: io::Error::last_os_error(),
            });
        }
        // SAFETY: the kernel wrote a NUL-terminated name into req.name.
        let got = unsafe { CStr::from_ptr(req.name.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        let tap = Tap { fd, name: got };
        tap.ioctl_int(
            libc::TUNSETVNETHDRSZ,
            VNET_HDR_LEN as libc::c_int,
            "TUNSETVNETHDRSZ",
        )?;
        // USO needs kernel 6.2; fall back to TCP offloads alone.
        if tap
            .ioctl_ulong(libc::TUNSETOFFLOAD, OFFLOADS | OFFLOADS_USO)
            .is_err()
        {
            tap.ioctl_ulong(libc::TUNSETOFFLOAD, OFFLOADS)
                .map_err(|source| TapError::Ioctl {
                    op: "TUNSETOFFLOAD",
                    name: tap.name.clone(),
                    source,
                })?;
        }
        tap.set_carrier(false)?;
        Ok(tap)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn ioctl_int(&self, req: libc::Ioctl, mut v: libc::c_int, op: &'static str) -> Result<(), TapError> {
        // SAFETY: these TUN ioctls read one int through the pointer.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), req, &mut v) };
        cvt(r).map(|_| ()).map_err(|source| TapError::Ioctl {
            op,
            name: self.name.clone(),
            source,
        })
    }

    fn ioctl_ulong(&self, req: libc::Ioctl, v: libc::c_uint) -> io::Result<()> {
        // SAFETY: TUNSETOFFLOAD takes its argument by value.
        cvt(unsafe { libc::ioctl(self.fd.as_raw_fd(), req, libc::c_ulong::from(v)) }).map(|_| ())
    }

    /// Carrier of the group interface: on while any member is active.
    pub fn set_carrier(&self, on: bool) -> Result<(), TapError> {
        self.ioctl_int(libc::TUNSETCARRIER, libc::c_int::from(on), "TUNSETCARRIER")
    }

    /// Reads one frame with its vnet header; `Ok(None)` when nothing is pending.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        // SAFETY: buf is valid for writes of buf.len() bytes.
        let r = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        match cvt_size(r) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes one frame (vnet header first).
    pub fn write(&self, buf: &[u8]) -> io::Result<()> {
        // SAFETY: buf is valid for reads of buf.len() bytes.
        let r = unsafe { libc::write(self.fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
        cvt_size(r).map(|_| ())
    }
}

impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::testns::*;

    #[test]
    fn tap_exists_while_open_and_starts_without_carrier() {
        in_new_netns(|| {
            let tap = Tap::create("tst0").unwrap();
            sh("ip link set tst0 up");
            // sysfs shows the mount's namespace, not the thread's: ask ip.
            let out = std::process::Command::new("ip")
                .args(["link", "show", "tst0"])
                .output()
                .unwrap();
            let s = String::from_utf8_lossy(&out.stdout);
            assert!(s.contains("NO-CARRIER"), "{s}");
            tap.set_carrier(true).unwrap();
            let out = std::process::Command::new("ip")
                .args(["link", "show", "tst0"])
                .output()
                .unwrap();
            assert!(!String::from_utf8_lossy(&out.stdout).contains("NO-CARRIER"));
            let e = Tap::create("tst0")
                .err()
                .expect("a second open of a busy TAP must fail");
            assert!(matches!(e, TapError::Create { .. }), "{e}");
            assert!(e.to_string().starts_with("creating TAP device tst0: "), "{e}");
            drop(tap);
            assert_eq!(ifindex("tst0"), 0);
            let e = Tap::create("name-that-is-too-long").err().expect("name too long");
            assert!(matches!(e, TapError::BadName { .. }), "{e}");
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            assert_eq!(
                e.to_string(),
                "interface name \"name-that-is-too-long\" must be 1 to 15 bytes"
            );
        });
    }
}
