//! Packet formats: every byte layout the daemon reads or writes, in one place.
//!
//! Each format lives in its own module, in the style of smoltcp's `wire`:
//!
//! - a zero-copy view `Packet<T: AsRef<[u8]>>` (`Frame` for Ethernet) over a
//!   buffer. `new_unchecked` wraps without checks (for the fast path, after
//!   its own length check); `new_checked` checks length and consistency and
//!   returns an [`Error`], never panics. Getters read fields; setters (for
//!   `T: AsMut<[u8]>`) write them. The getters of a view made with
//!   `new_checked` never panic.
//! - the byte ranges of the fields, in the format's `field` module: the only
//!   place in the crate that spells a protocol header's offset (the payload
//!   of our own probes has its layout in `detect::frames`).
//! - a `Repr`: the high-level, owned content of a header, with
//!   `parse(&Packet)` (which rejects what the daemon never accepts; it may
//!   be lossy: `ipv4::Repr` keeps only the Router Alert option and does not
//!   refuse fragments, which callers check on the view),
//!   `buffer_len()` and `emit(&mut Packet)`, so that building a frame is
//!   "size the buffer, emit each layer's `Repr` into its payload".
//!
//! Layers nest through `payload()`/`payload_mut()`: an Ethernet frame's
//! payload is an ARP or IPv4 packet, an IPv4 packet's payload an ICMP or IGMP
//! message. Checksums are computed by [`checksum`] and filled by the
//! `fill_checksum` of the format that has one.
//!
//! The per-frame fast path (`datapath::frame::classify`, the rewrites of
//! `datapath::plan`) stays specialised for speed but takes every offset from
//! the `field` modules here.
//!
//! IPv6 follows the same shape: [`ipv6`] (the fixed header and derived
//! addresses), [`ipv6ext`] (extension headers and a bounded walk to the
//! upper layer), [`icmpv6`] (with the pseudo-header checksum of
//! [`checksum`]), [`ndisc`] and [`mld`] (ICMPv6 messages, read and written
//! through `icmpv6::Packet`).
//!
//! Adding a format:
//! 1. a new module `wire/NAME.rs` with `mod field` (its ranges), `Packet<T>`
//!    with `check_len` and the shared constructors (`view_constructors!`), getters,
//!    setters, and a `Repr` with `parse`/`emit`/`buffer_len`;
//! 2. its numbers (ethertype, protocol, type codes) as named constants here
//!    or in the module that carries them ([`ethernet::ethertype`],
//!    [`ipv4::protocol`]);
//! 3. unit tests: emit then parse gives the same `Repr`, a frame captured
//!    from the kernel parses (where the kernel sends one; the VLAN test tags
//!    a captured frame by hand), and every truncation of a valid packet is an
//!    error, not a panic;
//! 4. `pub mod` and the re-exports below.

/// The constructors every view shares: `new_unchecked` wraps, `new_checked`
/// wraps after the view's own `check_len`, `into_inner` gives the buffer
/// back. Used inside `impl<T: AsRef<[u8]>> View<T>`; the view is a struct
/// with a `buffer: T` field.
macro_rules! view_constructors {
    ($view:ident) => {
        /// Wraps `buffer` without checks (the caller checked its length).
        #[inline]
        pub const fn new_unchecked(buffer: T) -> $view<T> {
            $view { buffer }
        }

        /// Wraps `buffer` after `check_len`: the getters never panic then.
        #[inline]
        pub fn new_checked(buffer: T) -> Result<$view<T>> {
            let v = $view::new_unchecked(buffer);
            v.check_len()?;
            Ok(v)
        }

        /// The wrapped buffer.
        #[inline]
        pub fn into_inner(self) -> T {
            self.buffer
        }
    };
}
use view_constructors;

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod igmp;
pub mod ipv4;
pub mod ipv6;
pub mod ipv6ext;
pub mod mld;
pub mod ndisc;
pub mod virtio;
pub mod vlan;

pub use ethernet::Address as EthernetAddress;

/// A byte range of a header field.
pub type Field = std::ops::Range<usize>;
/// Everything from an offset on: a payload.
pub type Rest = std::ops::RangeFrom<usize>;

/// Why a buffer is not a packet the daemon handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than its header, or than the length its header declares.
    Truncated,
    /// Inconsistent fields (a header length below the minimum, a version
    /// that does not match the ethertype).
    Malformed,
    /// Well formed, but a kind the daemon does not handle (ARP over other
    /// hardware, an ICMP type other than echo).
    Unsupported,
    /// A checksum that does not verify.
    Checksum,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated packet",
            Error::Malformed => "malformed packet",
            Error::Unsupported => "unsupported packet",
            Error::Checksum => "checksum error",
        })
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Reads a big-endian u16 at `f` (which must be two bytes inside `b`).
#[inline]
pub(crate) fn read_u16(b: &[u8], f: Field) -> u16 {
    u16::from_be_bytes([b[f.start], b[f.start + 1]])
}

/// Reads a big-endian u32 at `f` (four bytes inside `b`).
#[inline]
pub(crate) fn read_u32(b: &[u8], f: Field) -> u32 {
    u32::from_be_bytes([b[f.start], b[f.start + 1], b[f.start + 2], b[f.start + 3]])
}

#[inline]
pub(crate) fn write_u16(b: &mut [u8], f: Field, v: u16) {
    b[f].copy_from_slice(&v.to_be_bytes());
}

/// Parses hex with any whitespace in between, for captured frames in tests.
#[cfg(test)]
pub(crate) fn from_hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// A ping from 192.0.2.1 to 192.0.2.201 captured on Linux: the IPv4 packet
/// (84 bytes, ICMP echo request with the 56-byte payload of iputils ping).
#[cfg(test)]
pub(crate) const KERNEL_PING: &str =
    "4500 0054 985e 4000 4001 1d80 c000 0201 c000 02c9 0800 2abf 0a43 0001 e21c 026b \
     0000 0000 1ea2 0100 0000 0000 1011 1213 1415 1617 1819 1a1b 1c1d 1e1f 2021 2223 \
     2425 2627 2829 2a2b 2c2d 2e2f 3031 3233 3435 3637";

/// Frames captured with `tcpdump -xx` between two Linux 6 network
/// namespaces (192.0.2.1, MAC 02:..:0a, asks for 192.0.2.201, 02:..:0b).
/// The kernel's ARP request for 192.0.2.201.
#[cfg(test)]
pub(crate) const KERNEL_ARP_REQUEST: &str = "ffff ffff ffff 0200 0000 000a 0806 0001 \
     0800 0604 0001 0200 0000 000a c000 0201 0000 0000 0000 c000 02c9";
/// The kernel's ARP reply to it.
#[cfg(test)]
pub(crate) const KERNEL_ARP_REPLY: &str = "0200 0000 000a 0200 0000 000b 0806 0001 \
     0800 0604 0002 0200 0000 000b c000 02c9 0200 0000 000a c000 0201";
/// An IGMPv3 general query of a Linux bridge querier without an address.
#[cfg(test)]
pub(crate) const KERNEL_IGMP_QUERY: &str = "0100 5e00 0001 0200 0000 000a 0800 46c0 \
     0024 0000 4000 0102 0413 0000 0000 e000 0001 9404 0000 1164 ec1e 0000 0000 027d 0000";

/// Frames captured with `tcpdump -xx` between two Linux 6 network
/// namespaces with IPv6 on (2001:db8::1, MAC 02:..:0a; 2001:db8::2,
/// MAC 02:..:0b). An MLDv2 report (from ::, before the link-local address
/// is valid) joining ff02::1:ff00:b, with its Hop-by-Hop Router Alert.
#[cfg(test)]
pub(crate) const KERNEL_MLD_REPORT: &str = "3333 0000 0016 0200 0000 000b 86dd 6000 \
     0000 0024 0001 0000 0000 0000 0000 0000 0000 0000 0000 ff02 0000 0000 0000 0000 \
     0000 0000 0016 3a00 0502 0000 0100 8f00 6f7f 0000 0001 0400 0000 ff02 0000 0000 \
     0000 0000 0001 ff00 000b";
/// A DAD probe for fe80::ff:fe00:a: from ::, with the RFC 7527 nonce option.
#[cfg(test)]
pub(crate) const KERNEL_DAD_NS: &str = "3333 ff00 000a 0200 0000 000a 86dd 6000 \
     0000 0020 3aff 0000 0000 0000 0000 0000 0000 0000 0000 ff02 0000 0000 0000 0000 \
     0001 ff00 000a 8700 2b4b 0000 0000 fe80 0000 0000 0000 0000 00ff fe00 000a 0e01 \
     8043 0c3d b73e";
/// A router solicitation from fe80::ff:fe00:a to ff02::2, with its SLLA.
#[cfg(test)]
pub(crate) const KERNEL_RS: &str = "3333 0000 0002 0200 0000 000a 86dd 6000 \
     0000 0010 3aff fe80 0000 0000 0000 0000 00ff fe00 000a ff02 0000 0000 0000 0000 \
     0000 0000 0002 8500 7b1a 0000 0000 0101 0200 0000 000a";
/// A neighbour solicitation for 2001:db8::2 from 2001:db8::1, with its SLLA.
#[cfg(test)]
pub(crate) const KERNEL_NS: &str = "3333 ff00 0002 0200 0000 000a 86dd 6000 \
     0000 0020 3aff 2001 0db8 0000 0000 0000 0000 0000 0001 ff02 0000 0000 0000 0000 \
     0001 ff00 0002 8700 1c1e 0000 0000 2001 0db8 0000 0000 0000 0000 0000 0002 0101 \
     0200 0000 000a";
/// The solicited advertisement answering it (S=1, O=1), with its TLLA.
#[cfg(test)]
pub(crate) const KERNEL_NA: &str = "0200 0000 000a 0200 0000 000b 86dd 6000 \
     0000 0020 3aff 2001 0db8 0000 0000 0000 0000 0000 0002 2001 0db8 0000 0000 0000 \
     0000 0000 0001 8800 8a68 6000 0000 2001 0db8 0000 0000 0000 0000 0000 0002 0201 \
     0200 0000 000b";
/// `ping -6 -c 1 -s 16 2001:db8::2`: the echo request.
#[cfg(test)]
pub(crate) const KERNEL_PING6: &str = "0200 0000 000b 0200 0000 000a 86dd 600a \
     ee3b 0018 3a40 2001 0db8 0000 0000 0000 0000 0000 0001 2001 0db8 0000 0000 0000 \
     0000 0000 0002 8000 7548 314f 0001 5199 0c6b 0000 0000 169b 0900 0000 0000";
/// Its echo reply.
#[cfg(test)]
pub(crate) const KERNEL_PONG6: &str = "0200 0000 000a 0200 0000 000b 86dd 6003 \
     5e32 0018 3a40 2001 0db8 0000 0000 0000 0000 0000 0002 2001 0db8 0000 0000 0000 \
     0000 0000 0001 8100 7448 314f 0001 5199 0c6b 0000 0000 169b 0900 0000 0000";
