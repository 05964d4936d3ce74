//! IGMPv3 membership queries (RFC 3376 4.1): the general query the daemon
//! injects into the group interface so the kernel re-sends its membership
//! reports through the current nominee.

use super::{checksum, read_u16, read_u32, write_u16, Error, Result};
use std::net::Ipv4Addr;

/// Bytes of a version 3 query without sources.
pub const QUERY_V3_LEN: usize = field::SOURCES.start;
/// The message type of membership queries (every version).
pub const MEMBERSHIP_QUERY: u8 = 0x11;
/// The querier's robustness variable lives in the low three bits.
const QRV_MASK: u8 = 0x07;

pub mod field {
    use crate::wire::{Field, Rest};
    pub const TYPE: usize = 0;
    /// Max response code, in tenths of a second below 128.
    pub const MAX_RESP_CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const GROUP_ADDR: Field = 4..8;
    /// Reserved (4 bits), suppress router-side processing (1), QRV (3).
    pub const S_QRV: usize = 8;
    /// Querier's query interval code.
    pub const QQIC: usize = 9;
    pub const NUM_SOURCES: Field = 10..12;
    pub const SOURCES: Rest = 12..;
}

/// A view of an IGMP message (the IPv4 payload, exactly).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    super::view_constructors!(Packet);

    /// The buffer holds a version 3 query header.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < QUERY_V3_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    #[inline]
    pub fn max_resp_code(&self) -> u8 {
        self.buffer.as_ref()[field::MAX_RESP_CODE]
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    #[inline]
    pub fn group_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_u32(self.buffer.as_ref(), field::GROUP_ADDR))
    }

    #[inline]
    pub fn qrv(&self) -> u8 {
        self.buffer.as_ref()[field::S_QRV] & QRV_MASK
    }

    #[inline]
    pub fn qqic(&self) -> u8 {
        self.buffer.as_ref()[field::QQIC]
    }

    #[inline]
    pub fn num_sources(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::NUM_SOURCES)
    }

    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.buffer.as_ref())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }

    #[inline]
    pub fn set_max_resp_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::MAX_RESP_CODE] = v;
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    #[inline]
    pub fn set_group_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::GROUP_ADDR].copy_from_slice(&a.octets());
    }

    /// Sets the S flag off and the robustness variable.
    #[inline]
    pub fn set_qrv(&mut self, v: u8) {
        self.buffer.as_mut()[field::S_QRV] = v & QRV_MASK;
    }

    #[inline]
    pub fn set_qqic(&mut self, v: u8) {
        self.buffer.as_mut()[field::QQIC] = v;
    }

    #[inline]
    pub fn set_num_sources(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::NUM_SOURCES, v);
    }

    /// Computes and writes the checksum over the whole message.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// A version 3 membership query without sources: a general query when
/// `group` is 0.0.0.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub max_resp_code: u8,
    pub group: Ipv4Addr,
    pub qrv: u8,
    pub qqic: u8,
}

impl Repr {
    /// Parses a version 3 query without sources whose checksum verifies;
    /// other IGMP messages are [`Error::Unsupported`].
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        p.check_len()?;
        if p.msg_type() != MEMBERSHIP_QUERY || p.num_sources() != 0 {
            return Err(Error::Unsupported);
        }
        if !p.verify_checksum() {
            return Err(Error::Checksum);
        }
        Ok(Repr {
            max_resp_code: p.max_resp_code(),
            group: p.group_addr(),
            qrv: p.qrv(),
            qqic: p.qqic(),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        QUERY_V3_LEN
    }

    /// Writes the query, checksum included, into a packet of exactly
    /// [`Repr::buffer_len`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_msg_type(MEMBERSHIP_QUERY);
        p.set_max_resp_code(self.max_resp_code);
        p.set_group_addr(self.group);
        p.set_qrv(self.qrv);
        p.set_qqic(self.qqic);
        p.set_num_sources(0);
        p.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::from_hex;

    #[test]
    fn parses_a_kernel_query_and_round_trips() {
        // Max response 10 s, QRV 2, QQIC 125: the kernel's defaults.
        let f = from_hex(crate::wire::KERNEL_IGMP_QUERY);
        let eth = crate::wire::ethernet::Frame::new_checked(&f[..]).unwrap();
        let ip = crate::wire::ipv4::Packet::new_checked(eth.payload()).unwrap();
        assert!(ip.verify_checksum());
        let ipr = crate::wire::ipv4::Repr::parse(&ip).unwrap();
        assert!(ipr.router_alert && ipr.dst_addr == crate::wire::ipv4::ALL_HOSTS);
        let b = ip.payload();
        let p = Packet::new_checked(b).unwrap();
        let r = Repr::parse(&p).unwrap();
        assert_eq!(
            r,
            Repr {
                max_resp_code: 100,
                group: Ipv4Addr::UNSPECIFIED,
                qrv: 2,
                qqic: 125
            }
        );
        let mut out = [0u8; QUERY_V3_LEN];
        r.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(out[..], b[..]);
    }

    #[test]
    fn refuses_short_bad_and_other() {
        let r = Repr {
            max_resp_code: 10,
            group: Ipv4Addr::UNSPECIFIED,
            qrv: 2,
            qqic: 10,
        };
        let mut b = [0u8; QUERY_V3_LEN];
        r.emit(&mut Packet::new_unchecked(&mut b[..]));
        for n in 0..QUERY_V3_LEN {
            assert_eq!(Packet::new_checked(&b[..n]).err(), Some(Error::Truncated));
        }
        let mut c = b;
        c[field::QQIC] ^= 1;
        assert_eq!(Repr::parse(&Packet::new_unchecked(&c[..])), Err(Error::Checksum));
        let mut c = b;
        c[field::TYPE] = 0x22; // a version 3 report
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&c[..])),
            Err(Error::Unsupported)
        );
    }
}
