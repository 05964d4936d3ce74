//! Whether a packet capture watches an interface: a packet socket for all
//! protocols (what tcpdump opens) bound to it or to every interface, read
//! from /proc/net/packet (the daemon's own network namespace). The
//! outbound fast path sends frames past the group interface's taps, so it
//! steps aside while one is open.

use std::io::{self, Read};

const PROC_NET_PACKET: &str = "/proc/net/packet";
/// ETH_P_ALL as the file prints it (`%04x` of the host-order protocol).
const ETH_P_ALL: u16 = 0x0003;
/// Bytes of the file read at most (a line is about 70 bytes: thousands of
/// sockets). A longer file counts as "a capture may be open".
const MAX_READ: u64 = 1 << 20;
/// Columns: sk RefCnt Type Proto Iface R Rmem User Inode.
const COL_PROTO: usize = 3;
const COL_IFACE: usize = 4;

/// Whether the text of /proc/net/packet lists a socket for all protocols
/// on `ifindex` or on every interface (ifindex 0). A line that does not
/// parse counts as one: better a frame through user space than one a
/// capture misses.
pub fn capture_in(text: &str, ifindex: u32) -> bool {
    text.lines().skip(1).filter(|l| !l.trim().is_empty()).any(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let proto = cols.get(COL_PROTO).and_then(|p| u16::from_str_radix(p, 16).ok());
        let iface = cols.get(COL_IFACE).and_then(|i| i.parse::<u32>().ok());
        match (proto, iface) {
            (Some(p), Some(i)) => p == ETH_P_ALL && (i == 0 || i == ifindex),
            _ => true,
        }
    })
}

/// Reads /proc/net/packet: is a capture open on `ifindex`?
pub fn capture_open(ifindex: u32) -> io::Result<bool> {
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
    fn the_real_file_parses() {
        // Whatever is open on this host, reading works and an unused
        // ifindex has no capture unless one listens on all interfaces.
        let text = std::fs::read_to_string(PROC_NET_PACKET).unwrap();
        assert!(text.starts_with("sk"));
        assert_eq!(capture_open(u32::MAX).unwrap(), capture_in(&text, 0));
    }
}
