//! The packet sockets of this network namespace, from the kernel's socket
//! diagnostics (NETLINK_SOCK_DIAG, packet_diag): each one's protocol,
//! interface, and whether it has a receive ring or a filter. The outbound
//! fast path tells a packet capture (libpcap maps a receive ring) from a
//! DHCP client (ISC dhclient and dhcpcd hold a filtered all-protocols
//! socket with no ring) with it.

use super::error::Fault;
use super::messages::NLMSGHDR_LEN;
use super::requests::exchange;
use netlink_packet_core::{NlasIterator, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};
use std::io;
use std::time::Duration;

/// A packet socket as packet_diag reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketSock {
    /// The protocol it receives (host order; ETH_P_ALL = 3; 0: none yet).
    pub protocol: u16,
    /// The interface it is bound to; 0: every interface.
    pub ifindex: u32,
    /// A memory-mapped receive ring (PACKET_RX_RING) is set up.
    pub rx_ring: bool,
    /// A socket filter is attached.
    pub filter: bool,
}

// linux/sock_diag.h, linux/packet_diag.h, linux/netlink.h.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const PACKET_SHOW_INFO: u32 = 0x1;
const PACKET_SHOW_RING_CFG: u32 = 0x4;
const PACKET_SHOW_FILTER: u32 = 0x20;
const PACKET_DIAG_INFO: u16 = 0;
const PACKET_DIAG_RX_RING: u16 = 2;
const PACKET_DIAG_FILTER: u16 = 7;
/// struct packet_diag_req.
const REQ_LEN: usize = 20;
/// struct packet_diag_msg, before its attributes.
const MSG_LEN: usize = 16;
/// A dump that does not finish within this long is abandoned (the kernel
/// answers at once; this only bounds the control loop's wait).
const RECV_TIMEOUT: Duration = Duration::from_millis(100);
/// Messages read at most from one dump (a socket per message).
const MAX_SOCKETS: usize = 65_536;

/// Parses one SOCK_DIAG_BY_FAMILY reply's payload; None when it is not a
/// whole AF_PACKET record.
fn parse_packet_diag(payload: &[u8]) -> Option<PacketSock> {
    let head = payload.get(..MSG_LEN)?;
    if head[0] != libc::AF_PACKET as u8 {
        return None;
    }
    let protocol = u16::from_ne_bytes([head[2], head[3]]);
    let mut s = PacketSock {
        protocol,
        ifindex: 0,
        rx_ring: false,
        filter: false,
    };
    let mut info = false;
    for nla in NlasIterator::new(&payload[MSG_LEN..]) {
        let nla = nla.ok()?;
        match nla.kind() {
            PACKET_DIAG_INFO => {
                // struct packet_diag_info starts with pdi_index.
                s.ifindex = u32::from_ne_bytes(nla.value().get(..4)?.try_into().ok()?);
                info = true;
            }
            PACKET_DIAG_RX_RING => s.rx_ring = true,
            PACKET_DIAG_FILTER => s.filter = true,
            _ => {}
        }
    }
    info.then_some(s)
}

/// The request: every AF_PACKET socket, with its info and ring
/// configuration, and its filter if `filters` (the kernel copies each
/// socket's whole program for that: asked only when needed).
fn request(seq: u32, filters: bool) -> Vec<u8> {
    let show = PACKET_SHOW_INFO | PACKET_SHOW_RING_CFG | if filters { PACKET_SHOW_FILTER } else { 0 };
    let mut m = Vec::with_capacity(NLMSGHDR_LEN + REQ_LEN);
    m.extend_from_slice(&((NLMSGHDR_LEN + REQ_LEN) as u32).to_ne_bytes());
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.push(libc::AF_PACKET as u8);
    m.push(0); // sdiag_protocol
    m.extend_from_slice(&[0, 0]); // pad
    m.extend_from_slice(&0u32.to_ne_bytes()); // pdiag_ino: all
    m.extend_from_slice(&show.to_ne_bytes());
    m.extend_from_slice(&[0xff; 8]); // pdiag_cookie: INET_DIAG_NOCOOKIE
    m
}

/// A socket-diagnostics socket kept open, so each look costs one dump.
pub struct PacketDiag {
    sock: Socket,
    buf: Vec<u8>,
    seq: u32,
}

impl PacketDiag {
    pub fn new() -> io::Result<PacketDiag> {
        let mut sock = Socket::new(NETLINK_SOCK_DIAG)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: RECV_TIMEOUT.as_micros() as libc::suseconds_t,
        };
        crate::sys::setsockopt(&sock, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &timeout)?;
        Ok(PacketDiag {
            sock,
            buf: Vec::with_capacity(super::RECV_BUF_LEN),
            seq: 0,
        })
    }

    /// Every packet socket of this network namespace, `filter` reported
    /// only if `filters` (else false). Fails where the kernel has no
    /// packet_diag (CONFIG_PACKET_DIAG), and on a record that does not
    /// parse.
    pub fn packet_sockets(&mut self, filters: bool) -> io::Result<Vec<PacketSock>> {
        self.seq = self.seq.wrapping_add(1);
        let mut out = Vec::new();
        let mut unparsed = false;
        exchange(
            &self.sock,
            &mut self.buf,
            self.seq,
            &request(self.seq, filters),
            |t, payload| {
                if t != SOCK_DIAG_BY_FAMILY || out.len() > MAX_SOCKETS {
                    return;
                }
                match parse_packet_diag(payload) {
                    Some(s) => out.push(s),
                    None => unparsed = true,
                }
            },
        )
        .map_err(|f| match f {
            Fault::Socket(e) => e,
            // ENOENT: no packet_diag in this kernel.
            Fault::Kernel { errno, .. } => io::Error::from_raw_os_error(errno),
            f => io::Error::other(f.to_string()),
        })?;
        // A record we cannot read could be a capture: the caller falls back
        // to what it can read elsewhere.
        if unparsed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a packet_diag record that does not parse",
            ));
        }
        if out.len() > MAX_SOCKETS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "too many packet sockets",
            ));
        }
        Ok(out)
    }
}

/// [`PacketDiag::packet_sockets`] with filters, on a socket of its own.
#[cfg(test)]
pub fn packet_sockets() -> io::Result<Vec<PacketSock>> {
    PacketDiag::new()?.packet_sockets(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// struct nlattr's header; attributes are 4-aligned.
    const NLA_HDRLEN: usize = 4;
    const NLA_ALIGN: usize = 4;

    fn attr(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut a = ((NLA_HDRLEN + body.len()) as u16).to_ne_bytes().to_vec();
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(body);
        while a.len() % NLA_ALIGN != 0 {
            a.push(0);
        }
        a
    }

    fn msg(protocol: u16, attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut m = vec![libc::AF_PACKET as u8, libc::SOCK_RAW as u8];
        m.extend_from_slice(&protocol.to_ne_bytes());
        m.extend_from_slice(&[0; 12]);
        for a in attrs {
            m.extend_from_slice(a);
        }
        m
    }

    #[test]
    fn records_parse_and_broken_ones_do_not() {
        let info = attr(PACKET_DIAG_INFO, &[7, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
        let ring = attr(PACKET_DIAG_RX_RING, &[0; 28]);
        let filter = attr(PACKET_DIAG_FILTER, &[0; 8]);
        let s = parse_packet_diag(&msg(3, &[info.clone(), ring, filter.clone()])).unwrap();
        assert_eq!(
            s,
            PacketSock {
                protocol: 3,
                ifindex: 7,
                rx_ring: true,
                filter: true
            }
        );
        let s = parse_packet_diag(&msg(3, &[filter, info.clone()])).unwrap();
        assert!(!s.rx_ring && s.filter);
        // No info, a truncated record, an attribute longer than the record,
        // another family.
        assert_eq!(parse_packet_diag(&msg(3, &[])), None);
        assert_eq!(
            parse_packet_diag(&msg(3, std::slice::from_ref(&info))[..10]),
            None
        );
        let mut long = msg(3, std::slice::from_ref(&info));
        long[MSG_LEN] = 200;
        assert_eq!(parse_packet_diag(&long), None);
        let mut inet = msg(3, &[info]);
        inet[0] = libc::AF_INET as u8;
        assert_eq!(parse_packet_diag(&inet), None);
    }

    /// The kernel lists a socket this test opens (a member data socket on
    /// lo), with its filter once one is attached. Needs root and
    /// packet_diag.
    #[test]
    fn the_kernel_lists_a_packet_socket_as_it_is() {
        use crate::sys::packet::{RxSocket, ETH_P_ALL};
        use crate::sys::testns::{ifindex, in_new_netns, sh};
        in_new_netns(|| {
            sh("ip link set lo up");
            let lo = ifindex("lo");
            assert!(packet_sockets().unwrap().is_empty());
            let rx = RxSocket::open(lo, "lo").unwrap();
            let want = PacketSock {
                protocol: ETH_P_ALL,
                ifindex: lo,
                rx_ring: false,
                filter: false,
            };
            assert_eq!(packet_sockets().unwrap(), vec![want]);
            rx.set_filter(&[libc::sock_filter {
                code: crate::sys::cbpf::RET_K,
                jt: 0,
                jf: 0,
                k: u32::MAX,
            }])
            .unwrap();
            let filtered = PacketSock { filter: true, ..want };
            assert_eq!(packet_sockets().unwrap(), vec![filtered]);
            drop(rx);
            assert!(packet_sockets().unwrap().is_empty());
        });
    }
}
