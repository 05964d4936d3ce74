//! IPv6 extension headers (RFC 8200 4): Hop-by-Hop and Destination
//! options, Routing, Fragment, and the Authentication Header (RFC 4302),
//! and a bounded walk over a chain of them to the upper layer.
//!
//! The daemon builds one: the Hop-by-Hop header with the Router Alert
//! option (RFC 2711) that MLD messages carry.

use super::ipv6::next_header;
use super::{read_u16, read_u32, write_u16, Error, Result};

/// Most extension headers walked before the upper layer: real packets have
/// a few; a longer chain is refused rather than followed (every input is
/// bounded, RFC 7112 lets a middlebox drop such chains).
pub const MAX_EXT_HEADERS: usize = 8;
/// Bytes of a Fragment header (fixed), and the least of every other kind.
pub const FRAGMENT_LEN: usize = 8;
/// Hop-by-Hop, Destination options and Routing count their length in
/// 8-octet units, not counting the first eight.
pub const LEN_UNIT: usize = 8;
/// The Authentication Header counts 4-octet units, not counting the first two.
const AUTH_LEN_UNIT: usize = 4;
const AUTH_LEN_BIAS: usize = 2;
/// Fragment offset (in 8-octet units, the high 13 bits) and the M flag.
const FRAG_OFFSET_SHIFT: u16 = 3;
const FRAG_MORE: u16 = 0x0001;

/// Options of Hop-by-Hop and Destination options headers.
pub mod option {
    /// One byte of padding (no length byte).
    pub const PAD1: u8 = 0;
    /// N bytes of padding.
    pub const PADN: u8 = 1;
    /// Router Alert (RFC 2711), two bytes of value.
    pub const ROUTER_ALERT: u8 = 5;
    pub const ROUTER_ALERT_LEN: u8 = 2;
    /// Router Alert value: the datagram contains an MLD message.
    pub const ROUTER_ALERT_MLD: u16 = 0;
}

pub mod field {
    use crate::wire::Field;
    pub const NXT_HDR: usize = 0;
    pub const LENGTH: usize = 1;
    /// Options of Hop-by-Hop and Destination headers: from here to the end.
    pub const OPTIONS_START: usize = 2;
    /// Fragment offset, reserved bits and M flag.
    pub const FRAG_OFF: Field = 2..4;
    pub const FRAG_IDENT: Field = 4..8;
}

/// Whether a next-header value names an extension header this module walks.
#[inline]
pub const fn is_extension(nh: u8) -> bool {
    matches!(
        nh,
        next_header::HOP_BY_HOP
            | next_header::ROUTING
            | next_header::FRAGMENT
            | next_header::DEST_OPTS
            | next_header::AUTH
    )
}

/// The length of the extension header of kind `nh` whose first two bytes
/// are `b` (at least two).
#[inline]
fn header_len_of(nh: u8, len_byte: u8) -> usize {
    match nh {
        next_header::FRAGMENT => FRAGMENT_LEN,
        next_header::AUTH => (usize::from(len_byte) + AUTH_LEN_BIAS) * AUTH_LEN_UNIT,
        _ => (usize::from(len_byte) + 1) * LEN_UNIT,
    }
}

/// A view of one extension header of kind `kind` (its next-header value
/// in the header before).
#[derive(Debug, Clone)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
    kind: u8,
}

impl<T: AsRef<[u8]>> Header<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T, kind: u8) -> Header<T> {
        Header { buffer, kind }
    }

    /// Wraps after [`Header::check_len`]; a kind that is not an extension
    /// header is [`Error::Unsupported`].
    pub fn new_checked(buffer: T, kind: u8) -> Result<Header<T>> {
        if !is_extension(kind) {
            return Err(Error::Unsupported);
        }
        let h = Header::new_unchecked(buffer, kind);
        h.check_len()?;
        Ok(h)
    }

    /// The buffer holds the whole header its length byte declares.
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < FRAGMENT_LEN || b.len() < self.header_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn kind(&self) -> u8 {
        self.kind
    }

    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NXT_HDR]
    }

    #[inline]
    pub fn header_len(&self) -> usize {
        header_len_of(self.kind, self.buffer.as_ref()[field::LENGTH])
    }

    /// Fragment headers: the offset of this fragment in 8-octet units.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::FRAG_OFF) >> FRAG_OFFSET_SHIFT
    }

    /// Fragment headers: more fragments follow.
    #[inline]
    pub fn more_frags(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FRAG_OFF) & FRAG_MORE != 0
    }

    /// Fragment headers: the datagram's identification.
    #[inline]
    pub fn frag_ident(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::FRAG_IDENT)
    }

    /// Hop-by-Hop and Destination options headers: the option bytes.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS_START..self.header_len()]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Header<&'a T> {
    /// What follows this header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Header<T> {
    #[inline]
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NXT_HDR] = v;
    }

    /// Sets the length byte for a header of `len` bytes (a whole number of units).
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::LENGTH] = match self.kind {
            next_header::FRAGMENT => 0,
            next_header::AUTH => (len / AUTH_LEN_UNIT - AUTH_LEN_BIAS) as u8,
            _ => (len / LEN_UNIT - 1) as u8,
        };
    }

    #[inline]
    pub fn set_frag(&mut self, offset: u16, more: bool, ident: u32) {
        let v = offset << FRAG_OFFSET_SHIFT | if more { FRAG_MORE } else { 0 };
        write_u16(self.buffer.as_mut(), field::FRAG_OFF, v);
        self.buffer.as_mut()[field::FRAG_IDENT].copy_from_slice(&ident.to_be_bytes());
    }

    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[field::OPTIONS_START..hl]
    }
}

/// Whether an options area holds a Router Alert option with `value`;
/// malformed options (running past the area) are an error.
pub fn has_router_alert(options: &[u8], value: u16) -> Result<bool> {
    let mut i = 0;
    let mut found = false;
    while i < options.len() {
        let t = options[i];
        if t == option::PAD1 {
            i += 1;
            continue;
        }
        let len = usize::from(*options.get(i + 1).ok_or(Error::Malformed)?);
        let data = options.get(i + 2..i + 2 + len).ok_or(Error::Malformed)?;
        if t == option::ROUTER_ALERT && len == usize::from(option::ROUTER_ALERT_LEN) {
            found |= u16::from_be_bytes([data[0], data[1]]) == value;
        }
        i += 2 + len;
    }
    Ok(found)
}

/// The extension headers the daemon builds or interprets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr {
    /// Hop-by-Hop options; the daemon emits only Router Alert (MLD) or padding.
    HopByHop { next_header: u8, router_alert_mld: bool },
    /// A fragment of a datagram.
    Fragment {
        next_header: u8,
        offset: u16,
        more: bool,
        ident: u32,
    },
}

/// Router Alert (MLD) followed by a PadN of two bytes: one 8-byte header.
const HBH_ROUTER_ALERT: [u8; 6] = [
    option::ROUTER_ALERT,
    option::ROUTER_ALERT_LEN,
    0,
    0,
    option::PADN,
    0,
];
/// Padding only: a PadN of four bytes of value.
const HBH_PADDING: [u8; 6] = [option::PADN, 4, 0, 0, 0, 0];

impl Repr {
    /// Parses a Hop-by-Hop or Fragment header; other kinds are
    /// [`Error::Unsupported`] (they are walked over, never built).
    pub fn parse<T: AsRef<[u8]>>(h: &Header<T>) -> Result<Repr> {
        h.check_len()?;
        match h.kind() {
            next_header::HOP_BY_HOP => Ok(Repr::HopByHop {
                next_header: h.next_header(),
                router_alert_mld: has_router_alert(h.options(), option::ROUTER_ALERT_MLD)?,
            }),
            next_header::FRAGMENT => Ok(Repr::Fragment {
                next_header: h.next_header(),
                offset: h.frag_offset(),
                more: h.more_frags(),
                ident: h.frag_ident(),
            }),
            _ => Err(Error::Unsupported),
        }
    }

    /// The next-header value that names this header.
    pub const fn kind(&self) -> u8 {
        match self {
            Repr::HopByHop { .. } => next_header::HOP_BY_HOP,
            Repr::Fragment { .. } => next_header::FRAGMENT,
        }
    }

    /// Both kinds are one 8-byte unit.
    pub const fn buffer_len(&self) -> usize {
        FRAGMENT_LEN
    }

    /// Writes the header into a view of kind [`Repr::kind`] of at least
    /// [`Repr::buffer_len`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, h: &mut Header<T>) {
        match *self {
            Repr::HopByHop {
                next_header,
                router_alert_mld,
            } => {
                h.set_next_header(next_header);
                h.set_header_len(FRAGMENT_LEN);
                let o = if router_alert_mld {
                    HBH_ROUTER_ALERT
                } else {
                    HBH_PADDING
                };
                h.options_mut().copy_from_slice(&o);
            }
            Repr::Fragment {
                next_header,
                offset,
                more,
                ident,
            } => {
                h.set_next_header(next_header);
                h.set_header_len(FRAGMENT_LEN);
                h.set_frag(offset, more, ident);
            }
        }
    }
}

/// A fragment header met on the way to the upper layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// In 8-octet units; 0 for the first fragment.
    pub offset: u16,
    pub more: bool,
    pub ident: u32,
}

impl Fragment {
    /// A fragment header that fragments nothing (RFC 6946 atomic fragment).
    pub const fn is_atomic(&self) -> bool {
        self.offset == 0 && !self.more
    }
}

/// Where the upper layer of an IPv6 packet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upper {
    /// Its protocol (TCP, UDP, ICMPv6, ESP, no next header...).
    pub next_header: u8,
    /// Its offset in the IPv6 payload.
    pub offset: usize,
    /// The fragment header on the way, if any. For a fragment that is not
    /// the first, the bytes at `offset` are the middle of a datagram, not
    /// a header.
    pub fragment: Option<Fragment>,
}

/// Walks the extension headers of an IPv6 payload whose first header is
/// `first` (the fixed header's next header) to the upper layer. Stops at a
/// fragment with a non-zero offset (nothing after it is a header). More than
/// [`MAX_EXT_HEADERS`] is [`Error::Unsupported`]; a header running past the
/// payload is [`Error::Truncated`].
#[inline]
pub fn walk(first: u8, payload: &[u8]) -> Result<Upper> {
    let mut nh = first;
    let mut at = 0usize;
    let mut fragment = None;
    for _ in 0..=MAX_EXT_HEADERS {
        if !is_extension(nh) {
            return Ok(Upper {
                next_header: nh,
                offset: at,
                fragment,
            });
        }
        let h = payload.get(at..).ok_or(Error::Truncated)?;
        let h = Header::new_checked(h, nh)?;
        let len = h.header_len();
        if nh == next_header::FRAGMENT {
            let f = Fragment {
                offset: h.frag_offset(),
                more: h.more_frags(),
                ident: h.frag_ident(),
            };
            fragment = Some(f);
            if f.offset != 0 {
                return Ok(Upper {
                    next_header: h.next_header(),
                    offset: at + len,
                    fragment,
                });
            }
        }
        nh = h.next_header();
        at += len;
    }
    Err(Error::Unsupported)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet;
    use crate::wire::{from_hex, ipv6, KERNEL_MLD_REPORT};

    #[test]
    fn parses_the_hop_by_hop_header_of_a_kernel_mld_report() {
        let f = from_hex(KERNEL_MLD_REPORT);
        let ip = ipv6::Packet::new_checked(&f[ethernet::HEADER_LEN..]).unwrap();
        assert_eq!(ip.next_header(), next_header::HOP_BY_HOP);
        let h = Header::new_checked(ip.payload(), ip.next_header()).unwrap();
        let r = Repr::parse(&h).unwrap();
        assert_eq!(
            r,
            Repr::HopByHop {
                next_header: next_header::ICMPV6,
                router_alert_mld: true
            }
        );
        let mut out = [0u8; FRAGMENT_LEN];
        r.emit(&mut Header::new_unchecked(&mut out[..], r.kind()));
        assert_eq!(out[..], ip.payload()[..FRAGMENT_LEN]);
        assert_eq!(
            walk(ip.next_header(), ip.payload()),
            Ok(Upper {
                next_header: next_header::ICMPV6,
                offset: FRAGMENT_LEN,
                fragment: None
            })
        );
    }

    /// A chain: Hop-by-Hop, Destination options (16 bytes), Routing (8),
    /// Authentication (12), Fragment, then `last`.
    fn chain(frag_offset: u16, last: u8) -> Vec<u8> {
        let mut v = vec![next_header::DEST_OPTS, 0, option::PADN, 4, 0, 0, 0, 0];
        v.extend_from_slice(&[next_header::ROUTING, 1, option::PADN, 12]);
        v.extend_from_slice(&[0; 12]);
        v.extend_from_slice(&[next_header::AUTH, 0, 0, 0, 0, 0, 0, 0]);
        v.extend_from_slice(&[next_header::FRAGMENT, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let mut frag = [0u8; FRAGMENT_LEN];
        Repr::Fragment {
            next_header: last,
            offset: frag_offset,
            more: true,
            ident: 0xdead_beef,
        }
        .emit(&mut Header::new_unchecked(&mut frag[..], next_header::FRAGMENT));
        v.extend_from_slice(&frag);
        v.extend_from_slice(&[0x12, 0x34, 0x00, 0x50]);
        v
    }

    #[test]
    fn walks_every_kind_to_the_upper_layer() {
        let v = chain(0, next_header::TCP);
        let u = walk(next_header::HOP_BY_HOP, &v).unwrap();
        assert_eq!(u.next_header, next_header::TCP);
        assert_eq!(u.offset, v.len() - 4);
        assert_eq!(
            u.fragment,
            Some(Fragment {
                offset: 0,
                more: true,
                ident: 0xdead_beef
            })
        );
        // A later fragment: the walk stops after its header.
        let v = chain(185, next_header::UDP);
        let u = walk(next_header::HOP_BY_HOP, &v).unwrap();
        assert_eq!((u.next_header, u.offset), (next_header::UDP, v.len() - 4));
        assert_eq!(u.fragment.map(|f| f.offset), Some(185));
        let fh = Header::new_checked(&v[v.len() - 12..], next_header::FRAGMENT).unwrap();
        assert!(matches!(Repr::parse(&fh), Ok(Repr::Fragment { offset: 185, .. })));
        // No extension header at all.
        assert_eq!(walk(next_header::UDP, &[]).unwrap().offset, 0);
    }

    #[test]
    fn truncations_and_long_chains_are_errors() {
        let v = chain(0, next_header::TCP);
        let upper_at = v.len() - 4;
        for n in 0..upper_at {
            assert_eq!(
                walk(next_header::HOP_BY_HOP, &v[..n]),
                Err(Error::Truncated),
                "len {n}"
            );
        }
        // One more header than the bound is refused; the bound itself is not.
        let mut long = Vec::new();
        for _ in 0..MAX_EXT_HEADERS {
            long.extend_from_slice(&[next_header::DEST_OPTS, 0, option::PADN, 4, 0, 0, 0, 0]);
        }
        let n = long.len();
        long[n - LEN_UNIT] = next_header::UDP;
        assert_eq!(walk(next_header::DEST_OPTS, &long).unwrap().offset, n);
        long[n - LEN_UNIT] = next_header::DEST_OPTS;
        long.extend_from_slice(&[next_header::UDP, 0, option::PADN, 4, 0, 0, 0, 0]);
        assert_eq!(walk(next_header::DEST_OPTS, &long), Err(Error::Unsupported));
        // Options running past their header.
        assert_eq!(
            has_router_alert(&[option::ROUTER_ALERT, 2, 0], 0),
            Err(Error::Malformed)
        );
        assert_eq!(
            has_router_alert(&[option::PAD1, option::PADN], 0),
            Err(Error::Malformed)
        );
        assert_eq!(has_router_alert(&HBH_PADDING, 0), Ok(false));
        assert_eq!(
            Header::new_checked(&v[..], next_header::TCP).err(),
            Some(Error::Unsupported)
        );
    }
}
