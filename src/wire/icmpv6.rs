//! ICMPv6 (RFC 4443): the message header every ICMPv6 message shares, its
//! checksum over the IPv6 pseudo-header, and echo request and reply (ICMPv6
//! probing, answering ping6 on a test address). Neighbour discovery is in
//! [`super::ndisc`], MLD in [`super::mld`].

use super::ipv6::next_header;
use super::{checksum, read_u16, write_u16, Error, Result};
use std::net::Ipv6Addr;

/// Bytes of the shared header (type, code, checksum) and of the echo header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;
pub const ECHO_HEADER_LEN: usize = field::ECHO_PAYLOAD.start;

/// Message types.
pub mod msg_type {
    pub const DST_UNREACHABLE: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const PARAM_PROBLEM: u8 = 4;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const MLD_QUERY: u8 = 130;
    pub const MLD_REPORT: u8 = 131;
    pub const MLD_DONE: u8 = 132;
    pub const ROUTER_SOLICIT: u8 = 133;
    pub const ROUTER_ADVERT: u8 = 134;
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    pub const NEIGHBOR_ADVERT: u8 = 136;
    pub const REDIRECT: u8 = 137;
    pub const MLDV2_REPORT: u8 = 143;
}

/// Whether `t` is a neighbour discovery message (RFC 4861: RS, RA, NS,
/// NA, Redirect).
#[inline]
pub const fn is_ndp(t: u8) -> bool {
    t >= msg_type::ROUTER_SOLICIT && t <= msg_type::REDIRECT
}

/// The only code echo messages have.
const ECHO_CODE: u8 = 0;

pub mod field {
    use crate::wire::{Field, Rest};
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    /// The message body after the shared header.
    pub const BODY: Rest = 4..;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQNO: Field = 6..8;
    pub const ECHO_PAYLOAD: Rest = 8..;
}

/// A view of an ICMPv6 message (the upper-layer payload, exactly: the
/// checksum covers all of it).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    /// Read and written in place by the message kinds of [`super::ndisc`]
    /// and [`super::mld`].
    pub(super) buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    super::view_constructors!(Packet);

    /// The buffer holds the shared header; each message kind checks its
    /// own length when parsed.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Echo messages (after a length check of [`ECHO_HEADER_LEN`]).
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_SEQNO)
    }

    /// Whether the checksum over the pseudo-header and the whole message verifies.
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        checksum::verify_v6(src, dst, next_header::ICMPV6, self.buffer.as_ref())
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The message after the shared header.
    #[inline]
    pub fn body(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::BODY]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }

    #[inline]
    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    #[inline]
    pub fn set_echo_ident(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_IDENT, v);
    }

    #[inline]
    pub fn set_echo_seq_no(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_SEQNO, v);
    }

    #[inline]
    pub fn body_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::BODY]
    }

    /// Computes and writes the checksum over the pseudo-header of `src`
    /// and `dst` and the whole message.
    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let c = checksum::checksum_v6(src, dst, next_header::ICMPV6, self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// An echo message; `data` borrows from the parsed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr<'a> {
    EchoRequest { ident: u16, seq_no: u16, data: &'a [u8] },
    EchoReply { ident: u16, seq_no: u16, data: &'a [u8] },
}

impl<'a> Repr<'a> {
    /// Parses an echo request or reply from `src` to `dst` with code 0 and
    /// a checksum that verifies; other types are [`Error::Unsupported`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        p: &Packet<&'a T>,
    ) -> Result<Repr<'a>> {
        p.check_len()?;
        let ty = p.msg_type();
        if !matches!(ty, msg_type::ECHO_REQUEST | msg_type::ECHO_REPLY) || p.msg_code() != ECHO_CODE {
            return Err(Error::Unsupported);
        }
        if p.buffer.as_ref().len() < ECHO_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if !p.verify_checksum(src, dst) {
            return Err(Error::Checksum);
        }
        let (ident, seq_no) = (p.echo_ident(), p.echo_seq_no());
        let data = &p.buffer.as_ref()[field::ECHO_PAYLOAD];
        Ok(if ty == msg_type::ECHO_REQUEST {
            Repr::EchoRequest { ident, seq_no, data }
        } else {
            Repr::EchoReply { ident, seq_no, data }
        })
    }

    pub fn buffer_len(&self) -> usize {
        match self {
            Repr::EchoRequest { data, .. } | Repr::EchoReply { data, .. } => ECHO_HEADER_LEN + data.len(),
        }
    }

    /// Writes the message, checksum (for `src` to `dst`) included, into a
    /// packet of exactly [`Repr::buffer_len`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, src: &Ipv6Addr, dst: &Ipv6Addr, p: &mut Packet<T>) {
        let (ty, ident, seq_no, data) = match *self {
            Repr::EchoRequest { ident, seq_no, data } => (msg_type::ECHO_REQUEST, ident, seq_no, data),
            Repr::EchoReply { ident, seq_no, data } => (msg_type::ECHO_REPLY, ident, seq_no, data),
        };
        p.set_msg_type(ty);
        p.set_msg_code(ECHO_CODE);
        p.set_echo_ident(ident);
        p.set_echo_seq_no(seq_no);
        p.buffer.as_mut()[field::ECHO_PAYLOAD][..data.len()].copy_from_slice(data);
        p.fill_checksum(src, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{ethernet, from_hex, ipv6, KERNEL_PING6, KERNEL_PONG6};

    fn icmp_of(frame: &[u8]) -> (Ipv6Addr, Ipv6Addr, Vec<u8>) {
        let ip = ipv6::Packet::new_checked(&frame[ethernet::HEADER_LEN..]).unwrap();
        (ip.src_addr(), ip.dst_addr(), ip.payload().to_vec())
    }

    #[test]
    fn parses_a_kernel_ping6_and_its_answer() {
        let (src, dst, b) = icmp_of(&from_hex(KERNEL_PING6));
        let p = Packet::new_checked(&b[..]).unwrap();
        let Ok(Repr::EchoRequest { ident, seq_no, data }) = Repr::parse(&src, &dst, &p) else {
            panic!("not an echo request")
        };
        assert_eq!((ident, seq_no, data.len()), (12623, 1, 16));
        // Our answer is byte for byte the kernel's.
        let rep = Repr::EchoReply { ident, seq_no, data };
        let mut out = vec![0u8; rep.buffer_len()];
        rep.emit(&dst, &src, &mut Packet::new_unchecked(&mut out[..]));
        let (_, _, kernel) = icmp_of(&from_hex(KERNEL_PONG6));
        assert_eq!(out, kernel);
        assert_eq!(Repr::parse(&dst, &src, &Packet::new_unchecked(&out[..])), Ok(rep));
        // The checksum covers the pseudo-header: another address fails it.
        let other: Ipv6Addr = "2001:db8::3".parse().unwrap();
        assert_eq!(
            Repr::parse(&other, &src, &Packet::new_unchecked(&out[..])),
            Err(Error::Checksum)
        );
    }

    #[test]
    fn refuses_short_other_and_bad() {
        let (src, dst) = (ipv6::ALL_NODES, "fe80::1".parse().unwrap());
        let r = Repr::EchoRequest {
            ident: 1,
            seq_no: 2,
            data: &[7; 20],
        };
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&src, &dst, &mut Packet::new_unchecked(&mut b[..]));
        for n in 0..HEADER_LEN {
            assert_eq!(Packet::new_checked(&b[..n]).err(), Some(Error::Truncated));
        }
        for n in HEADER_LEN..ECHO_HEADER_LEN {
            let p = Packet::new_checked(&b[..n]).unwrap();
            assert_eq!(Repr::parse(&src, &dst, &p), Err(Error::Truncated));
        }
        let mut c = b.clone();
        c[ECHO_HEADER_LEN] ^= 1;
        assert_eq!(
            Repr::parse(&src, &dst, &Packet::new_unchecked(&c[..])),
            Err(Error::Checksum)
        );
        let mut c = b.clone();
        c[field::TYPE] = msg_type::DST_UNREACHABLE;
        assert_eq!(
            Repr::parse(&src, &dst, &Packet::new_unchecked(&c[..])),
            Err(Error::Unsupported)
        );
        assert!(is_ndp(msg_type::ROUTER_SOLICIT) && is_ndp(msg_type::REDIRECT));
        assert!(!is_ndp(msg_type::MLDV2_REPORT) && !is_ndp(msg_type::MLD_DONE));
    }
}
