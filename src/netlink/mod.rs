//! Thin synchronous rtnetlink layer, split by concern:
//! - `messages`: the link, address and route records, decoding replies
//!   and events into them, building change requests (pure byte work);
//! - `requests`: the blocking request/response [`Handle`] for reading and
//!   changing links, addresses and routes, and reading qdiscs;
//! - `events`: the non-blocking multicast [`EventSocket`] for link,
//!   address and qdisc notifications;
//! - `error`: [`NetlinkError`], which names the failed operation (with
//!   interface name and index, address or route) and keeps the kernel's
//!   errno and extended-ack text typed.
//!
//! No `unsafe` here: the one socket option set by hand goes through
//! `crate::sys::setsockopt`.

mod error;
mod events;
mod messages;
mod requests;
pub mod sockdiag;
#[cfg(test)]
mod testutil;

use std::io;

use netlink_sys::Socket;

pub use error::{NetlinkError, ParseError};
pub use events::{Event, EventSocket};
pub use messages::QdiscInfo;
pub use messages::{
    Addr6Detail, AddrInfo, LinkInfo, Route6Detail, RouteInfo, IFAPROT_KERNEL_LL, IFAPROT_KERNEL_LO,
    IFAPROT_KERNEL_RA, IFA_F_DADFAILED, IFA_F_HOMEADDRESS, IFA_F_MANAGETEMPADDR, IFA_F_MCAUTOJOIN,
    IFA_F_NODAD, IFA_F_NOPREFIXROUTE, IFA_F_OPTIMISTIC, IFA_F_PERMANENT, IFA_F_TEMPORARY, IFA_F_TENTATIVE,
    INFINITY_LIFE_TIME, RTPROT_KERNEL, RTPROT_RA, TC_H_INGRESS, TC_H_ROOT,
};
pub use requests::Handle;

// Kernel dump skbs are at most 32 KiB, so 64 KiB never truncates them;
// bigger datagrams are still handled by growing the buffer after a peek.
const RECV_BUF_LEN: usize = 64 * 1024;

/// Receives one whole datagram into `buf` (cleared first), growing it when
/// the datagram is larger, so nothing is ever silently truncated.
fn recv_datagram(sock: &Socket, buf: &mut Vec<u8>) -> io::Result<usize> {
    loop {
        buf.clear();
        let peeked = match sock.recv(buf, libc::MSG_PEEK | libc::MSG_TRUNC) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        buf.clear();
        if peeked > buf.capacity() {
            buf.reserve(peeked);
        }
        match sock.recv(buf, 0) {
            Ok(n) => return Ok(n.min(buf.len())),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}
