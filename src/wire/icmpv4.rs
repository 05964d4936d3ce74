//! ICMPv4 (RFC 792) echo request and reply: the messages of ICMP probing
//! and of answering a ping to a test address.

use super::{checksum, read_u16, write_u16, Error, Result};

/// Bytes of the echo header: type, code, checksum, identifier, sequence.
pub const HEADER_LEN: usize = field::ECHO_PAYLOAD.start;

/// Message types.
pub mod msg_type {
    pub const ECHO_REPLY: u8 = 0;
    pub const ECHO_REQUEST: u8 = 8;
}

/// The only code echo messages have.
const ECHO_CODE: u8 = 0;

pub mod field {
    use crate::wire::{Field, Rest};
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQNO: Field = 6..8;
    pub const ECHO_PAYLOAD: Rest = 8..;
}

/// A view of an ICMPv4 message (the IPv4 payload, exactly: the checksum
/// covers all of it).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    super::view_constructors!(Packet);

    /// The buffer holds an echo header.
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

    #[inline]
    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_SEQNO)
    }

    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::ECHO_PAYLOAD]
    }

    /// Whether the checksum over the whole message verifies.
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
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::ECHO_PAYLOAD]
    }

    /// Computes and writes the checksum over the whole message.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
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
    /// Parses an echo request or reply with code 0 and a checksum that
    /// verifies; other types are [`Error::Unsupported`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &Packet<&'a T>) -> Result<Repr<'a>> {
        p.check_len()?;
        let ty = p.msg_type();
        if !matches!(ty, msg_type::ECHO_REQUEST | msg_type::ECHO_REPLY) || p.msg_code() != ECHO_CODE {
            return Err(Error::Unsupported);
        }
        if !p.verify_checksum() {
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
            Repr::EchoRequest { data, .. } | Repr::EchoReply { data, .. } => HEADER_LEN + data.len(),
        }
    }

    /// Writes the message, checksum included, into a packet of exactly
    /// [`Repr::buffer_len`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        let (ty, ident, seq_no, data) = match *self {
            Repr::EchoRequest { ident, seq_no, data } => (msg_type::ECHO_REQUEST, ident, seq_no, data),
            Repr::EchoReply { ident, seq_no, data } => (msg_type::ECHO_REPLY, ident, seq_no, data),
        };
        p.set_msg_type(ty);
        p.set_msg_code(ECHO_CODE);
        p.set_echo_ident(ident);
        p.set_echo_seq_no(seq_no);
        p.data_mut()[..data.len()].copy_from_slice(data);
        p.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::from_hex;
    use crate::wire::ipv4;

    #[test]
    fn parses_a_kernel_ping_and_answers_it() {
        let b = from_hex(crate::wire::KERNEL_PING);
        let ip = ipv4::Packet::new_checked(&b[..]).unwrap();
        let p = Packet::new_checked(ip.payload()).unwrap();
        let Ok(Repr::EchoRequest { ident, seq_no, data }) = Repr::parse(&p) else {
            panic!("not an echo request")
        };
        assert_eq!((ident, seq_no, data.len()), (0x0a43, 1, 56));
        let rep = Repr::EchoReply { ident, seq_no, data };
        let mut out = vec![0u8; rep.buffer_len()];
        rep.emit(&mut Packet::new_unchecked(&mut out[..]));
        let q = Packet::new_checked(&out[..]).unwrap();
        assert!(q.verify_checksum());
        assert_eq!(Repr::parse(&q), Ok(rep));
        // Only the type and the checksum differ from the request.
        assert_eq!(out[HEADER_LEN..], *ip.payload().get(HEADER_LEN..).unwrap());
        assert_eq!(
            out[field::ECHO_IDENT.start..HEADER_LEN],
            ip.payload()[field::ECHO_IDENT.start..HEADER_LEN]
        );
    }

    #[test]
    fn refuses_bad_checksum_other_types_and_short() {
        let r = Repr::EchoRequest {
            ident: 1,
            seq_no: 2,
            data: &[7; 20],
        };
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut Packet::new_unchecked(&mut b[..]));
        for n in 0..HEADER_LEN {
            assert_eq!(Packet::new_checked(&b[..n]).err(), Some(Error::Truncated));
        }
        let mut c = b.clone();
        c[HEADER_LEN] ^= 1;
        assert_eq!(Repr::parse(&Packet::new_unchecked(&c[..])), Err(Error::Checksum));
        let mut c = b.clone();
        c[field::TYPE] = 3; // destination unreachable
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&c[..])),
            Err(Error::Unsupported)
        );
        let mut c = b.clone();
        c[field::CODE] = 1;
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&c[..])),
            Err(Error::Unsupported)
        );
    }
}
