//! IEEE 802.1Q VLAN tags. On the wire the tag sits where the ethertype was:
//! the frame's ethertype field holds the tag protocol id (TPID), and this
//! header, in the Ethernet payload, holds the tag control information (TCI)
//! and the real ethertype.

use super::{read_u16, write_u16, Error, Result};

/// Bytes a tag adds to a frame (TPID and TCI).
pub const TAG_LEN: usize = 4;
/// Bytes of this header in the Ethernet payload (TCI and inner ethertype).
pub const HEADER_LEN: usize = field::PAYLOAD.start;
/// Bits of the VLAN id in the TCI.
const VID_MASK: u16 = 0x0fff;

pub mod field {
    use crate::wire::{Field, Rest};
    /// Priority (3 bits), drop eligible (1), VLAN id (12).
    pub const TCI: Field = 0..2;
    pub const ETHERTYPE: Field = 2..4;
    pub const PAYLOAD: Rest = 4..;
}

/// Where, in an Ethernet frame, a tag is inserted: right after the two
/// addresses, so its TPID takes the place of the ethertype.
pub const TAG_OFFSET: usize = super::ethernet::field::ETHERTYPE.start;

/// A view of the VLAN header in an Ethernet payload.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    super::view_constructors!(Packet);

    #[inline]
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    #[inline]
    pub fn tci(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::TCI)
    }

    #[inline]
    pub fn vlan_id(&self) -> u16 {
        self.tci() & VID_MASK
    }

    #[inline]
    pub fn ethertype(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ETHERTYPE)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_tci(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::TCI, v);
    }

    #[inline]
    pub fn set_ethertype(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE, v);
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

/// A VLAN header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub tci: u16,
    pub ethertype: u16,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        p.check_len()?;
        Ok(Repr {
            tci: p.tci(),
            ethertype: p.ethertype(),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_tci(self.tci);
        p.set_ethertype(self.ethertype);
    }
}

/// Writes a tag (`tpid`, `tci`) at [`TAG_OFFSET`] of `frame`, over what is
/// there (the caller has moved the addresses to make room).
#[inline]
pub fn write_tag(frame: &mut [u8], tpid: u16, tci: u16) {
    let mut eth = super::ethernet::Frame::new_unchecked(&mut *frame);
    eth.set_ethertype(tpid);
    Packet::new_unchecked(eth.payload_mut()).set_tci(tci);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::{self, ethertype};
    use crate::wire::from_hex;

    #[test]
    fn round_trip() {
        let r = Repr {
            tci: 0x2005,
            ethertype: ethertype::IPV4,
        };
        let mut b = [0u8; HEADER_LEN];
        r.emit(&mut Packet::new_unchecked(&mut b[..]));
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p), Ok(r));
        assert_eq!(p.vlan_id(), 5);
        assert!(Packet::new_checked(&b[..3]).is_err());
    }

    #[test]
    fn parses_a_tagged_frame() {
        // The head of the kernel's ARP request, tagged for VLAN 5.
        let v = from_hex("ffff ffff ffff 0200 0000 000a 8100 0005 0806 0001");
        let eth = ethernet::Frame::new_checked(&v[..]).unwrap();
        assert_eq!(eth.ethertype(), ethertype::VLAN);
        let tag = Packet::new_checked(eth.payload()).unwrap();
        assert_eq!(
            Repr::parse(&tag),
            Ok(Repr {
                tci: 5,
                ethertype: ethertype::ARP
            })
        );
        let mut w = v.clone();
        w[TAG_OFFSET..TAG_OFFSET + TAG_LEN].fill(0);
        write_tag(&mut w, ethertype::VLAN, 5);
        assert_eq!(w, v);
    }
}
