//! ARP (RFC 826) for IPv4 over Ethernet: the only shape the daemon handles,
//! so the field ranges are those of 6-byte hardware and 4-byte protocol
//! addresses.

use super::ethernet::{self, ethertype, Address};
use super::{read_u16, read_u32, write_u16, Error, Result};
use std::net::Ipv4Addr;

/// Bytes of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = field::TPA.end;
/// Hardware type of Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;
/// Bytes of an IPv4 address, the protocol address length.
const IPV4_ADDR_LEN: u8 = 4;

/// Operation codes.
pub mod op {
    pub const REQUEST: u16 = 1;
    pub const REPLY: u16 = 2;
}

pub mod field {
    use crate::wire::Field;
    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    /// Sender hardware address.
    pub const SHA: Field = 8..14;
    /// Sender protocol address.
    pub const SPA: Field = 14..18;
    /// Target hardware address.
    pub const THA: Field = 18..24;
    /// Target protocol address.
    pub const TPA: Field = 24..28;
}

/// A view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    super::view_constructors!(Packet);

    /// The buffer holds an Ethernet/IPv4 ARP packet's worth of bytes.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < PACKET_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    #[inline]
    pub fn hardware_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::HTYPE)
    }

    #[inline]
    pub fn protocol_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::PTYPE)
    }

    #[inline]
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    #[inline]
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// Whether this is ARP for IPv4 over Ethernet.
    #[inline]
    pub fn is_ethernet_ipv4(&self) -> bool {
        self.hardware_type() == HTYPE_ETHERNET
            && self.protocol_type() == ethertype::IPV4
            && usize::from(self.hardware_len()) == ethernet::ADDRESS_LEN
            && self.protocol_len() == IPV4_ADDR_LEN
    }

    #[inline]
    pub fn operation(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::OPER)
    }

    #[inline]
    pub fn source_hardware_addr(&self) -> Address {
        let mut a = ethernet::UNSPECIFIED;
        a.copy_from_slice(&self.buffer.as_ref()[field::SHA]);
        a
    }

    #[inline]
    pub fn source_protocol_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_u32(self.buffer.as_ref(), field::SPA))
    }

    #[inline]
    pub fn target_hardware_addr(&self) -> Address {
        let mut a = ethernet::UNSPECIFIED;
        a.copy_from_slice(&self.buffer.as_ref()[field::THA]);
        a
    }

    #[inline]
    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_u32(self.buffer.as_ref(), field::TPA))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the fixed part: Ethernet hardware, IPv4 protocol.
    #[inline]
    pub fn set_ethernet_ipv4(&mut self) {
        let b = self.buffer.as_mut();
        write_u16(b, field::HTYPE, HTYPE_ETHERNET);
        write_u16(b, field::PTYPE, ethertype::IPV4);
        b[field::HLEN] = ethernet::ADDRESS_LEN as u8;
        b[field::PLEN] = IPV4_ADDR_LEN;
    }

    #[inline]
    pub fn set_operation(&mut self, op: u16) {
        write_u16(self.buffer.as_mut(), field::OPER, op);
    }

    #[inline]
    pub fn set_source_hardware_addr(&mut self, a: Address) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&a);
    }

    #[inline]
    pub fn set_source_protocol_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&a.octets());
    }

    #[inline]
    pub fn set_target_hardware_addr(&mut self, a: Address) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&a);
    }

    #[inline]
    pub fn set_target_protocol_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&a.octets());
    }
}

/// An Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Any operation code: the caller decides what it handles.
    pub operation: u16,
    pub source_hardware_addr: Address,
    pub source_protocol_addr: Ipv4Addr,
    pub target_hardware_addr: Address,
    pub target_protocol_addr: Ipv4Addr,
}

impl Repr {
    /// Parses an Ethernet/IPv4 ARP packet; other hardware or protocol
    /// types are [`Error::Unsupported`].
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        p.check_len()?;
        if !p.is_ethernet_ipv4() {
            return Err(Error::Unsupported);
        }
        Ok(Repr {
            operation: p.operation(),
            source_hardware_addr: p.source_hardware_addr(),
            source_protocol_addr: p.source_protocol_addr(),
            target_hardware_addr: p.target_hardware_addr(),
            target_protocol_addr: p.target_protocol_addr(),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_ethernet_ipv4();
        p.set_operation(self.operation);
        p.set_source_hardware_addr(self.source_hardware_addr);
        p.set_source_protocol_addr(self.source_protocol_addr);
        p.set_target_hardware_addr(self.target_hardware_addr);
        p.set_target_protocol_addr(self.target_protocol_addr);
    }

    /// This packet in an Ethernet frame from `src` to `dst` (padded to the
    /// minimum frame length).
    pub fn frame(&self, src: Address, dst: Address) -> Vec<u8> {
        let eth = ethernet::Repr {
            src_addr: src,
            dst_addr: dst,
            ethertype: ethertype::ARP,
        };
        let mut v = eth.frame(self.buffer_len());
        let mut f = ethernet::Frame::new_unchecked(&mut v[..]);
        self.emit(&mut Packet::new_unchecked(f.payload_mut()));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::from_hex;

    fn repr() -> Repr {
        Repr {
            operation: op::REPLY,
            source_hardware_addr: [2, 0, 0, 0, 0, 1],
            source_protocol_addr: Ipv4Addr::new(192, 0, 2, 201),
            target_hardware_addr: [2, 0, 0, 0, 0, 2],
            target_protocol_addr: Ipv4Addr::new(192, 0, 2, 1),
        }
    }

    #[test]
    fn round_trip() {
        let r = repr();
        let mut b = [0u8; PACKET_LEN];
        r.emit(&mut Packet::new_unchecked(&mut b[..]));
        assert_eq!(Repr::parse(&Packet::new_checked(&b[..]).unwrap()), Ok(r));
        let f = r.frame(r.source_hardware_addr, r.target_hardware_addr);
        let eth = ethernet::Frame::new_checked(&f[..]).unwrap();
        assert_eq!(eth.ethertype(), ethertype::ARP);
        assert_eq!(f.len(), ethernet::MIN_FRAME_LEN);
        assert_eq!(Repr::parse(&Packet::new_checked(eth.payload()).unwrap()), Ok(r));
    }

    #[test]
    fn parses_a_kernel_request_and_answers_like_it() {
        let f = from_hex(crate::wire::KERNEL_ARP_REQUEST);
        let eth = ethernet::Frame::new_checked(&f[..]).unwrap();
        let r = Repr::parse(&Packet::new_checked(eth.payload()).unwrap()).unwrap();
        assert_eq!(r.operation, op::REQUEST);
        assert_eq!(r.source_hardware_addr, eth.src_addr());
        assert_eq!(r.source_protocol_addr, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(r.target_hardware_addr, ethernet::UNSPECIFIED);
        assert_eq!(r.target_protocol_addr, Ipv4Addr::new(192, 0, 2, 201));
        // Our own reply to it is byte for byte the kernel's.
        let reply = Repr {
            operation: op::REPLY,
            source_hardware_addr: [2, 0, 0, 0, 0, 0x0b],
            source_protocol_addr: r.target_protocol_addr,
            target_hardware_addr: r.source_hardware_addr,
            target_protocol_addr: r.source_protocol_addr,
        };
        let ours = reply.frame(reply.source_hardware_addr, r.source_hardware_addr);
        let kernel = from_hex(crate::wire::KERNEL_ARP_REPLY);
        assert_eq!(ours[..kernel.len()], kernel[..]);
    }

    #[test]
    fn refuses_short_and_foreign() {
        let mut b = [0u8; PACKET_LEN];
        repr().emit(&mut Packet::new_unchecked(&mut b[..]));
        for n in 0..PACKET_LEN {
            assert_eq!(Packet::new_checked(&b[..n]).err(), Some(Error::Truncated));
        }
        for (at, v) in [
            (field::HTYPE.start + 1, 6u8),
            (field::PTYPE.start, 0x86),
            (field::HLEN, 8),
            (field::PLEN, 16),
        ] {
            let mut c = b;
            c[at] = v;
            assert_eq!(
                Repr::parse(&Packet::new_unchecked(&c[..])),
                Err(Error::Unsupported)
            );
        }
    }
}
