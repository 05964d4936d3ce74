//! ETHTOOL_GLINK: the driver's carrier state, read directly. The kernel
//! batches carrier events of ordinary NICs once per second; this read is
//! current and also flushes the pending event.

use super::cvt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const SIOCETHTOOL: libc::Ioctl = 0x8946;
const ETHTOOL_GLINK: u32 = 0x0000_000a;

#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// `struct ifreq` with the `ifr_data` pointer member.
#[repr(C)]
struct IfReqData {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut EthtoolValue,
    _pad: [u8; 16],
}

/// A socket to issue ethtool ioctls on.
pub struct LinkReader {
    fd: OwnedFd,
}

impl LinkReader {
    pub fn new() -> io::Result<LinkReader> {
        // SAFETY: plain socket(2) call; the result is checked.
        let raw = cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
        // SAFETY: raw is a fresh descriptor we own.
        Ok(LinkReader {
            fd: unsafe { OwnedFd::from_raw_fd(raw) },
        })
    }

    /// Whether the driver reports link on `ifname`.
    pub fn link_up(&self, ifname: &str) -> io::Result<bool> {
        let mut v = EthtoolValue {
            cmd: ETHTOOL_GLINK,
            data: 0,
        };
        let mut req = IfReqData {
            name: [0; libc::IFNAMSIZ],
            data: &mut v,
            _pad: [0; 16],
        };
        for (d, s) in req.name.iter_mut().zip(ifname.bytes().take(libc::IFNAMSIZ - 1)) {
            *d = s as libc::c_char;
        }
        // SAFETY: SIOCETHTOOL reads the ifreq and writes through its data
        // pointer into `v`, both alive for the call.
        cvt(unsafe { libc::ioctl(self.fd.as_raw_fd(), SIOCETHTOOL, &mut req) })?;
        Ok(v.data != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::testns::*;

    #[test]
    fn reads_veth_carrier() {
        in_new_netns(|| {
            sh("ip link add e0 type veth peer name e1 && ip link set e0 up");
            let r = LinkReader::new().unwrap();
            assert!(!r.link_up("e0").unwrap(), "peer down: no carrier");
            sh("ip link set e1 up");
            assert!(r.link_up("e0").unwrap());
            assert!(r.link_up("nosuch0").is_err());
        });
    }
}
