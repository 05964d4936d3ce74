//! Whether a packet capture watches an interface. The outbound fast path
//! sends frames past the group interface's taps, so it steps aside while
//! one is open. A capture is a packet socket for all protocols (ETH_P_ALL)
//! bound to the interface or to every interface, unless it filters what it
//! takes and has no receive ring: libpcap (tcpdump, Wireshark's dumpcap)
//! always maps a ring, while a DHCP client (ISC dhclient, dhcpcd) holds a
//! filtered all-protocols socket for good and reads it with recv, and must
//! not keep the fast path off. Read from the kernel's socket diagnostics
//! (packet_diag); where those are missing, from /proc/net/packet, which
//! cannot tell the two apart (every such socket counts).

use crate::netlink::sockdiag::{PacketDiag, PacketSock};
/// ETH_P_ALL (the file prints it as `%04x` of the host-order protocol).
use crate::sys::packet::ETH_P_ALL;
use std::io::{self, Read};

const PROC_NET_PACKET: &str = "/proc/net/packet";
/// Bytes of the file read at most (a line is about 70 bytes: thousands of
/// sockets). A longer file counts as "a capture may be open".
const MAX_READ: u64 = 1 << 20;
/// Columns: sk RefCnt Type Proto Iface R Rmem User Inode (Iface follows
/// Proto).
const COL_PROTO: usize = 3;

/// Whether the text of /proc/net/packet lists a socket for all protocols
/// on `ifindex` or on every interface (ifindex 0). A line that does not
/// parse counts as one: better a frame through user space than one a
/// capture misses.
pub fn capture_in(text: &str, ifindex: u32) -> bool {
    text.lines().skip(1).filter(|l| !l.trim().is_empty()).any(|line| {
        let mut cols = line.split_whitespace().skip(COL_PROTO);
        let proto = cols.next().and_then(|p| u16::from_str_radix(p, 16).ok());
        let iface = cols.next().and_then(|i| i.parse::<u32>().ok());
        match (proto, iface) {
            (Some(p), Some(i)) => p == ETH_P_ALL && (i == 0 || i == ifindex),
            _ => true,
        }
    })
}

/// Whether packet socket `s` is a capture on `ifindex`.
pub fn is_capture(s: &PacketSock, ifindex: u32) -> bool {
    s.protocol == ETH_P_ALL && (s.ifindex == 0 || s.ifindex == ifindex) && (s.rx_ring || !s.filter)
}

/// Looks for captures, with a packet_diag socket kept open between looks.
#[derive(Default)]
pub struct CaptureWatch {
    diag: Option<PacketDiag>,
    /// The kernel has no packet_diag: not asked again (each ask would
    /// have it look for the module).
    no_diag: bool,
}

impl CaptureWatch {
    /// Is a capture open on `ifindex`? From packet_diag, else
    /// /proc/net/packet; unreadable: yes (user space sends, which every
    /// capture sees).
    pub fn open(&mut self, ifindex: u32) -> bool {
        if self.diag.is_none() && !self.no_diag {
            self.diag = PacketDiag::new().ok();
        }
        // Most looks find no socket for all protocols on the interface, or
        // only libpcap's (with a ring): one dump without the filters, the
        // costly part, answers those.
        let from_diag = self.diag.as_mut().map(|d| {
            let socks = d.packet_sockets(false)?;
            let on = |s: &&PacketSock| s.protocol == ETH_P_ALL && (s.ifindex == 0 || s.ifindex == ifindex);
            if socks.iter().filter(on).all(|s| s.rx_ring) {
                return Ok(socks);
            }
            d.packet_sockets(true)
        });
        match from_diag {
            Some(Ok(socks)) => socks.iter().any(|s| is_capture(s, ifindex)),
            Some(Err(e)) => {
                log::debug!("packet_diag: {e}; reading {PROC_NET_PACKET}");
                // A fresh socket next time (a timed-out dump may linger).
                self.diag = None;
                self.no_diag = e.raw_os_error() == Some(libc::ENOENT);
                capture_in_proc(ifindex).unwrap_or(true)
            }
            None => capture_in_proc(ifindex).unwrap_or(true),
        }
    }
}

/// Reads /proc/net/packet: is a socket for all protocols open on `ifindex`?
fn capture_in_proc(ifindex: u32) -> io::Result<bool> {
    let mut text = String::new();
    let n = std::fs::File::open(PROC_NET_PACKET)?
        .take(MAX_READ + 1)
        .read_to_string(&mut text)?;
    Ok(n as u64 > MAX_READ || capture_in(&text, ifindex))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "sk               RefCnt Type Proto  Iface R Rmem   User   Inode\n";

    fn line(proto: &str, iface: u32) -> String {
        format!("ffff8f0a4c1e2000 3      3    {proto}   {iface:<5} 1 0      0      123456\n")
    }

    #[test]
    fn a_socket_for_all_protocols_on_the_interface_or_on_all_is_a_capture() {
        assert!(!capture_in(HEAD, 7));
        assert!(!capture_in("", 7));
        assert!(capture_in(&format!("{HEAD}{}", line("0003", 7)), 7));
        assert!(capture_in(&format!("{HEAD}{}", line("0003", 0)), 7));
        // Another interface (a member), or one protocol only (a DHCP client).
        assert!(!capture_in(
            &format!("{HEAD}{}{}", line("0003", 8), line("0800", 7)),
            7
        ));
        assert!(!capture_in(&format!("{HEAD}{}", line("88cc", 0)), 7));
        // A line that does not parse: assume the worst.
        assert!(capture_in(&format!("{HEAD}garbage\n"), 7));
    }

    #[test]
    fn a_filtered_socket_without_a_ring_is_no_capture() {
        let tcpdump = PacketSock {
            protocol: ETH_P_ALL,
            ifindex: 7,
            rx_ring: true,
            filter: true,
        };
        assert!(is_capture(&tcpdump, 7));
        assert!(is_capture(
            &PacketSock {
                ifindex: 0,
                ..tcpdump
            },
            7
        ));
        assert!(is_capture(
            &PacketSock {
                filter: false,
                ..tcpdump
            },
            7
        ));
        // A program reading everything with recv, no filter: a capture too.
        assert!(is_capture(
            &PacketSock {
                rx_ring: false,
                filter: false,
                ..tcpdump
            },
            7
        ));
        let dhclient = PacketSock {
            rx_ring: false,
            ..tcpdump
        };
        assert!(!is_capture(&dhclient, 7));
        assert!(!is_capture(
            &PacketSock {
                ifindex: 8,
                ..tcpdump
            },
            7
        ));
        assert!(!is_capture(
            &PacketSock {
                protocol: 0x0800,
                ..tcpdump
            },
            7
        ));
    }

    #[test]
    fn the_real_file_parses() {
        let text = std::fs::read_to_string(PROC_NET_PACKET).unwrap();
        assert!(text.starts_with("sk"));
        // The host's own namespace: whatever is open, reading works.
        capture_in_proc(u32::MAX).unwrap();
    }
}
