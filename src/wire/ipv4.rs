//! IPv4 headers (RFC 791), with the one option the daemon sends: Router
//! Alert (RFC 2113), which IGMP queries carry.

use super::{checksum, read_u16, read_u32, write_u16, Error, Result};
use std::net::Ipv4Addr;

/// The version field of an IPv4 header.
pub const VERSION: u8 = 4;
/// Bytes of a header without options.
pub const MIN_HEADER_LEN: usize = field::DST_ADDR.end;
/// Bytes of an IPv4 address.
pub const ADDRESS_LEN: usize = 4;
/// The version-and-header-length byte of a header without options.
pub const VER_IHL_PLAIN: u8 = VERSION << VERSION_SHIFT | (MIN_HEADER_LEN / IHL_UNIT) as u8;
/// The Router Alert option ("every router examines this packet"), value 0:
/// type 0x94 (copied, option 20), length 4.
pub const ROUTER_ALERT: [u8; 4] = [0x94, 0x04, 0x00, 0x00];
/// Header and fragment bits of the flags-and-offset field.
pub const FLAG_DF: u16 = 0x4000;
pub const FLAG_MF: u16 = 0x2000;
pub const FRAG_OFFSET_MASK: u16 = 0x1fff;
/// The all-hosts group (RFC 1112): every IPv4 host on the link.
pub const ALL_HOSTS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);
/// The header length field counts 32-bit words.
const IHL_UNIT: usize = 4;
const IHL_MASK: u8 = 0x0f;
const VERSION_SHIFT: u8 = 4;

/// IP protocol numbers the daemon knows.
pub mod protocol {
    pub const ICMP: u8 = 1;
    pub const IGMP: u8 = 2;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
}

pub mod field {
    use crate::wire::Field;
    /// Version (high nibble) and header length in words (low nibble).
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
}

/// The start of TCP and UDP headers alike: source and destination port.
pub mod l4 {
    use crate::wire::Field;
    /// Both ports, source first, as one big-endian word.
    pub const PORTS: Field = 0..4;
}

/// The version of a header's first byte.
#[inline]
pub const fn version_of(ver_ihl: u8) -> u8 {
    ver_ihl >> VERSION_SHIFT
}

/// The header length in bytes of a header's first byte.
#[inline]
pub const fn header_len_of(ver_ihl: u8) -> usize {
    (ver_ihl & IHL_MASK) as usize * IHL_UNIT
}

/// A view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    super::view_constructors!(Packet);

    /// The buffer holds the header and the total length it declares
    /// (more is link padding); the header length is at least the minimum
    /// and within the total.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = self.header_len();
        if hl < MIN_HEADER_LEN {
            return Err(Error::Malformed);
        }
        let total = usize::from(self.total_len());
        if total < hl {
            return Err(Error::Malformed);
        }
        if len < total {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    #[inline]
    pub fn version(&self) -> u8 {
        version_of(self.buffer.as_ref()[field::VER_IHL])
    }

    #[inline]
    pub fn header_len(&self) -> usize {
        header_len_of(self.buffer.as_ref()[field::VER_IHL])
    }

    #[inline]
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    #[inline]
    pub fn total_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    #[inline]
    pub fn ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::IDENT)
    }

    #[inline]
    pub fn flags_and_offset(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::FLG_OFF)
    }

    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_and_offset() & FLAG_DF != 0
    }

    /// More fragments follow, or this one is not the first: either way
    /// not a whole datagram.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_and_offset() & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }

    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_u32(self.buffer.as_ref(), field::SRC_ADDR))
    }

    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_u32(self.buffer.as_ref(), field::DST_ADDR))
    }

    /// The options (empty without).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[MIN_HEADER_LEN..self.header_len()]
    }

    /// Whether the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(&self.buffer.as_ref()[..self.header_len()])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The payload: from the end of the header to the total length (link
    /// padding excluded).
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Version 4 and a header of `header_len` bytes (a multiple of four).
    #[inline]
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = VERSION << VERSION_SHIFT | (header_len / IHL_UNIT) as u8;
    }

    #[inline]
    pub fn set_dscp_ecn(&mut self, v: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = v;
    }

    #[inline]
    pub fn set_total_len(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, v);
    }

    #[inline]
    pub fn set_ident(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::IDENT, v);
    }

    #[inline]
    pub fn set_flags_and_offset(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::FLG_OFF, v);
    }

    #[inline]
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    #[inline]
    pub fn set_protocol(&mut self, v: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = v;
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[MIN_HEADER_LEN..hl]
    }

    /// Computes and writes the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::checksum(&self.buffer.as_ref()[..hl]);
        self.set_checksum(c);
    }

    /// The payload, as [`Packet::payload`].
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, total) = (self.header_len(), usize::from(self.total_len()));
        &mut self.buffer.as_mut()[hl..total]
    }
}

/// An IPv4 header as the daemon builds them: no identification (every
/// datagram it sends fits one frame), no options but Router Alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub protocol: u8,
    pub payload_len: usize,
    pub ttl: u8,
    /// The former type-of-service byte.
    pub dscp_ecn: u8,
    pub dont_frag: bool,
    /// The header carries exactly the Router Alert option.
    pub router_alert: bool,
}

impl Repr {
    /// Parses a header: version 4, lengths consistent (see
    /// [`Packet::check_len`]). The header checksum is left to the caller
    /// ([`Packet::verify_checksum`]): the kernel has checked it on every
    /// frame that reaches us, and the daemon's parsers never relied on it.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        p.check_len()?;
        if p.version() != VERSION {
            return Err(Error::Malformed);
        }
        Ok(Repr {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            protocol: p.protocol(),
            payload_len: usize::from(p.total_len()) - p.header_len(),
            ttl: p.ttl(),
            dscp_ecn: p.dscp_ecn(),
            dont_frag: p.dont_frag(),
            router_alert: p.options() == ROUTER_ALERT,
        })
    }

    /// Bytes of the header.
    pub const fn buffer_len(&self) -> usize {
        if self.router_alert {
            MIN_HEADER_LEN + ROUTER_ALERT.len()
        } else {
            MIN_HEADER_LEN
        }
    }

    /// Bytes of the whole datagram.
    pub const fn total_len(&self) -> usize {
        self.buffer_len() + self.payload_len
    }

    /// Writes the header, checksum included, into a packet of at least
    /// [`Repr::total_len`] bytes; the payload is the caller's.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_version_and_header_len(self.buffer_len());
        p.set_dscp_ecn(self.dscp_ecn);
        p.set_total_len(self.total_len() as u16);
        p.set_ident(0);
        p.set_flags_and_offset(if self.dont_frag { FLAG_DF } else { 0 });
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src_addr(self.src_addr);
        p.set_dst_addr(self.dst_addr);
        if self.router_alert {
            p.options_mut().copy_from_slice(&ROUTER_ALERT);
        }
        p.fill_checksum();
    }

    /// A whole frame: `eth`'s header, this header, and a payload of
    /// [`Repr::payload_len`] bytes written by `fill`; padded to the
    /// minimum frame length.
    pub fn frame(&self, eth: super::ethernet::Repr, fill: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let mut v = eth.frame(self.total_len());
        let mut f = super::ethernet::Frame::new_unchecked(&mut v[..]);
        let mut p = Packet::new_unchecked(f.payload_mut());
        self.emit(&mut p);
        fill(p.payload_mut());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{from_hex, KERNEL_PING};

    #[test]
    fn a_plain_header_byte_is_version_4_and_20_bytes() {
        assert_eq!(version_of(VER_IHL_PLAIN), VERSION);
        assert_eq!(header_len_of(VER_IHL_PLAIN), MIN_HEADER_LEN);
    }

    #[test]
    fn parses_a_kernel_header() {
        let b = from_hex(KERNEL_PING);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(
            Repr::parse(&p),
            Ok(Repr {
                src_addr: Ipv4Addr::new(192, 0, 2, 1),
                dst_addr: Ipv4Addr::new(192, 0, 2, 201),
                protocol: protocol::ICMP,
                payload_len: 64,
                ttl: 64,
                dscp_ecn: 0,
                dont_frag: true,
                router_alert: false,
            })
        );
        assert!(!p.is_fragment());
        // Re-emitting gives the same bytes but for the kernel's ident.
        let r = Repr::parse(&p).unwrap();
        let mut c = b.clone();
        c[..MIN_HEADER_LEN].fill(0);
        let mut q = Packet::new_unchecked(&mut c[..]);
        r.emit(&mut q);
        q.set_ident(p.ident());
        q.fill_checksum();
        assert_eq!(c, b);
    }

    #[test]
    fn round_trip_with_router_alert() {
        let r = Repr {
            src_addr: Ipv4Addr::UNSPECIFIED,
            dst_addr: ALL_HOSTS,
            protocol: protocol::IGMP,
            payload_len: 12,
            ttl: 1,
            dscp_ecn: 0xc0,
            dont_frag: false,
            router_alert: true,
        };
        let mut b = vec![0u8; r.total_len() + 6]; // link padding after it
        r.emit(&mut Packet::new_unchecked(&mut b[..]));
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.payload().len(), 12);
        assert_eq!(Repr::parse(&p), Ok(r));
    }

    #[test]
    fn refuses_inconsistent_headers() {
        let b = from_hex(KERNEL_PING);
        for n in 0..b.len() {
            assert_eq!(
                Packet::new_checked(&b[..n]).err(),
                Some(Error::Truncated),
                "len {n}"
            );
        }
        let mut c = b.clone();
        c[field::VER_IHL] = 0x44; // 16-byte header
        assert_eq!(Packet::new_checked(&c[..]).err(), Some(Error::Malformed));
        c[field::VER_IHL] = 0x65; // version 6
        assert_eq!(Repr::parse(&Packet::new_unchecked(&c[..])), Err(Error::Malformed));
        let mut c = b.clone();
        c[field::LENGTH].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(Packet::new_checked(&c[..]).err(), Some(Error::Malformed));
        c[field::VER_IHL] = 0x4f; // 60-byte header beyond an 84-byte total: fine
        c[field::LENGTH].copy_from_slice(&84u16.to_be_bytes());
        assert!(Packet::new_checked(&c[..]).is_ok());
        c[field::LENGTH].copy_from_slice(&85u16.to_be_bytes());
        assert_eq!(Packet::new_checked(&c[..]).err(), Some(Error::Truncated));
    }
}
