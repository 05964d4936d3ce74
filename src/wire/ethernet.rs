//! Ethernet II frames (IEEE 802.3 with an ethertype).

use super::{read_u16, write_u16, Error, Result};

/// An Ethernet (MAC) address. A plain array, so addresses are written as
/// literals and compared without conversions.
pub type Address = [u8; ADDRESS_LEN];

/// Bytes of an Ethernet address.
pub const ADDRESS_LEN: usize = 6;
/// The broadcast address.
pub const BROADCAST: Address = [0xff; ADDRESS_LEN];
/// No address (an ARP request's unknown target).
pub const UNSPECIFIED: Address = [0; ADDRESS_LEN];
/// Bytes of the header: two addresses and the ethertype.
pub const HEADER_LEN: usize = field::PAYLOAD.start;
/// Shortest frame on the wire without the FCS; we pad what we build to it,
/// since a relay that does not pad (AF_PACKET does not) would send it short.
pub const MIN_FRAME_LEN: usize = 60;
/// The group (multicast) bit of an address's first octet.
const GROUP_BIT: u8 = 0x01;

/// Ethertypes the daemon knows.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    /// An IEEE 802.1Q VLAN tag follows.
    pub const VLAN: u16 = 0x8100;
    /// IPv6 ([`crate::wire::ipv6`]).
    pub const IPV6: u16 = 0x86dd;
}

pub mod field {
    use crate::wire::{Field, Rest};
    pub const DESTINATION: Field = 0..6;
    pub const SOURCE: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
    pub const PAYLOAD: Rest = 14..;
}

/// Broadcast and multicast addresses have the group bit set.
#[inline]
pub fn is_multicast(a: &Address) -> bool {
    a[0] & GROUP_BIT == GROUP_BIT
}

/// Whether `a` is a unicast address a host may use (not group, not zero).
#[inline]
pub fn is_unicast(a: &Address) -> bool {
    !is_multicast(a) && *a != UNSPECIFIED
}

/// An address as `ip link` shows it: six lower-case hex pairs joined by colons.
pub fn format(a: &Address) -> String {
    let parts: Vec<String> = a.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}

/// The IPv4 multicast MAC of group `ip` (RFC 1112 6.4: 01:00:5e and the
/// group's low 23 bits).
pub const fn ipv4_multicast(ip: std::net::Ipv4Addr) -> Address {
    let o = ip.octets();
    [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
}

#[inline]
fn address_at(b: &[u8], f: super::Field) -> Address {
    let mut a = UNSPECIFIED;
    a.copy_from_slice(&b[f]);
    a
}

/// A view of an Ethernet frame.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    // new_unchecked's getters panic on a buffer shorter than HEADER_LEN.
    super::view_constructors!(Frame);

    /// The buffer holds a whole header.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    #[inline]
    pub fn dst_addr(&self) -> Address {
        address_at(self.buffer.as_ref(), field::DESTINATION)
    }

    #[inline]
    pub fn src_addr(&self) -> Address {
        address_at(self.buffer.as_ref(), field::SOURCE)
    }

    #[inline]
    pub fn ethertype(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ETHERTYPE)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Frame<&'a T> {
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    #[inline]
    pub fn set_dst_addr(&mut self, a: Address) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&a);
    }

    #[inline]
    pub fn set_src_addr(&mut self, a: Address) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&a);
    }

    #[inline]
    pub fn set_ethertype(&mut self, t: u16) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE, t);
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

/// An Ethernet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src_addr: Address,
    pub dst_addr: Address,
    pub ethertype: u16,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(f: &Frame<T>) -> Result<Repr> {
        f.check_len()?;
        Ok(Repr {
            src_addr: f.src_addr(),
            dst_addr: f.dst_addr(),
            ethertype: f.ethertype(),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, f: &mut Frame<T>) {
        f.set_dst_addr(self.dst_addr);
        f.set_src_addr(self.src_addr);
        f.set_ethertype(self.ethertype);
    }

    /// A zeroed frame with this header and room for `payload_len` bytes,
    /// padded to [`MIN_FRAME_LEN`].
    pub fn frame(&self, payload_len: usize) -> Vec<u8> {
        let mut v = vec![0u8; (self.buffer_len() + payload_len).max(MIN_FRAME_LEN)];
        self.emit(&mut Frame::new_unchecked(&mut v[..]));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::from_hex;

    #[test]
    fn round_trip() {
        let r = Repr {
            src_addr: [2, 0, 0, 0, 0, 1],
            dst_addr: BROADCAST,
            ethertype: ethertype::ARP,
        };
        let v = r.frame(28);
        assert_eq!(v.len(), MIN_FRAME_LEN);
        let f = Frame::new_checked(&v[..]).unwrap();
        assert_eq!(Repr::parse(&f), Ok(r));
        assert_eq!(f.payload().len(), MIN_FRAME_LEN - HEADER_LEN);
        assert_eq!(r.frame(1500).len(), HEADER_LEN + 1500);
    }

    #[test]
    fn parses_a_kernel_frame_and_refuses_short_ones() {
        let v = from_hex(crate::wire::KERNEL_ARP_REQUEST);
        let f = Frame::new_checked(&v[..]).unwrap();
        assert_eq!(f.dst_addr(), BROADCAST);
        assert_eq!(f.src_addr(), [2, 0, 0, 0, 0, 0x0a]);
        assert_eq!(f.ethertype(), ethertype::ARP);
        assert_eq!(f.payload().len(), 28);
        for n in 0..HEADER_LEN {
            assert_eq!(Frame::new_checked(&v[..n]).err(), Some(Error::Truncated));
        }
    }

    #[test]
    fn address_kinds() {
        assert!(is_multicast(&BROADCAST));
        assert!(is_multicast(&ipv4_multicast(std::net::Ipv4Addr::new(
            224, 0, 0, 1
        ))));
        assert_eq!(
            ipv4_multicast(std::net::Ipv4Addr::new(239, 129, 2, 3)),
            [0x01, 0x00, 0x5e, 0x01, 2, 3]
        );
        assert!(is_unicast(&[2, 0, 0, 0, 0, 1]));
        assert!(!is_unicast(&UNSPECIFIED));
    }
}
