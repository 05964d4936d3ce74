//! Neighbour discovery (RFC 4861): router solicitation and advertisement,
//! neighbour solicitation and advertisement, redirect, and their options
//! (source and target link-layer address, prefix information, MTU). Each is
//! an ICMPv6 message: views are [`icmpv6::Packet`]s, read through the
//! ranges of [`field`].

use super::ethernet::{self, Address as Mac};
use super::icmpv6::{self, msg_type};
use super::ipv6::{self, address_at};
use super::{read_u16, read_u32, write_u16, Error, Result};
use std::net::Ipv6Addr;

/// NDP messages have code 0 (RFC 4861 6.1.1, 7.1.1, 8.1).
const NDP_CODE: u8 = 0;
/// Options count their length in 8-octet units, type and length included.
pub const OPTION_UNIT: usize = 8;
/// Most options read from one message: 1500 bytes hold fewer than 190 of
/// the smallest, and no real message has more than a few.
pub const MAX_OPTIONS: usize = 32;
/// An Ethernet link-layer address option is one unit: type, length, MAC.
pub const LLADDR_OPTION_LEN: usize = OPTION_UNIT;
const LLADDR_OPTION_UNITS: u8 = 1;
/// A prefix information option is four units; an MTU option one.
const PREFIX_OPTION_LEN: usize = 32;
const MTU_OPTION_LEN: usize = 8;

/// Option types.
pub mod option {
    pub const SOURCE_LLADDR: u8 = 1;
    pub const TARGET_LLADDR: u8 = 2;
    pub const PREFIX_INFO: u8 = 3;
    pub const REDIRECTED_HEADER: u8 = 4;
    pub const MTU: u8 = 5;
    /// The nonce of enhanced DAD (RFC 7527), which Linux adds to its DAD probes.
    pub const NONCE: u8 = 14;
}

/// Flags of a neighbour advertisement.
pub mod na_flags {
    pub const ROUTER: u8 = 0x80;
    pub const SOLICITED: u8 = 0x40;
    pub const OVERRIDE: u8 = 0x20;
}

/// Flags of a router advertisement.
pub mod ra_flags {
    pub const MANAGED: u8 = 0x80;
    pub const OTHER: u8 = 0x40;
}

/// Flags of a prefix information option.
pub mod prefix_flags {
    pub const ON_LINK: u8 = 0x80;
    pub const AUTONOMOUS: u8 = 0x40;
}

/// Byte ranges in the ICMPv6 message (type at 0), per message type.
pub mod field {
    use crate::wire::{Field, Rest};
    pub const RS_OPTIONS: Rest = 8..;

    pub const RA_CUR_HOP_LIMIT: usize = 4;
    pub const RA_FLAGS: usize = 5;
    pub const RA_ROUTER_LIFETIME: Field = 6..8;
    pub const RA_REACHABLE_TIME: Field = 8..12;
    pub const RA_RETRANS_TIME: Field = 12..16;
    pub const RA_OPTIONS: Rest = 16..;

    /// NS, NA and Redirect: the target address.
    pub const TARGET: Field = 8..24;
    pub const NA_FLAGS: usize = 4;
    pub const NS_NA_OPTIONS: Rest = 24..;

    pub const REDIRECT_DEST: Field = 24..40;
    pub const REDIRECT_OPTIONS: Rest = 40..;

    /// In an option (at its start).
    pub const OPT_TYPE: usize = 0;
    pub const OPT_LENGTH: usize = 1;
    pub const OPT_LLADDR: Field = 2..8;
    pub const OPT_PREFIX_LEN: usize = 2;
    pub const OPT_PREFIX_FLAGS: usize = 3;
    pub const OPT_PREFIX_VALID: Field = 4..8;
    pub const OPT_PREFIX_PREFERRED: Field = 8..12;
    pub const OPT_PREFIX: Field = 16..32;
    pub const OPT_MTU: Field = 4..8;
}

/// Where the options of an NDP message of type `t` start (also its length
/// without options); `None` for other types.
#[inline]
pub const fn options_start(t: u8) -> Option<usize> {
    match t {
        msg_type::ROUTER_SOLICIT => Some(field::RS_OPTIONS.start),
        msg_type::ROUTER_ADVERT => Some(field::RA_OPTIONS.start),
        msg_type::NEIGHBOR_SOLICIT | msg_type::NEIGHBOR_ADVERT => Some(field::NS_NA_OPTIONS.start),
        msg_type::REDIRECT => Some(field::REDIRECT_OPTIONS.start),
        _ => None,
    }
}

/// One option: its type, where it starts in the message, its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdOption<'a> {
    pub kind: u8,
    pub at: usize,
    pub bytes: &'a [u8],
}

impl NdOption<'_> {
    /// The MAC of an Ethernet link-layer address option.
    pub fn lladdr(&self) -> Result<Mac> {
        if self.bytes.len() != LLADDR_OPTION_LEN {
            return Err(Error::Malformed);
        }
        let mut m = ethernet::UNSPECIFIED;
        m.copy_from_slice(&self.bytes[field::OPT_LLADDR]);
        Ok(m)
    }
}

/// The options of a message, from `start` in `msg`: each whole and of
/// non-zero length (RFC 4861 4.6: a zero length discards the message),
/// at most [`MAX_OPTIONS`]. After an error the iterator ends.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    msg: &'a [u8],
    at: usize,
    count: usize,
    failed: bool,
}

/// The options of NDP message `msg` (an ICMPv6 message of an NDP type).
pub fn options(msg: &[u8]) -> Result<Options<'_>> {
    let t = *msg.get(icmpv6::field::TYPE).ok_or(Error::Truncated)?;
    let start = options_start(t).ok_or(Error::Unsupported)?;
    if msg.len() < start {
        return Err(Error::Truncated);
    }
    Ok(Options {
        msg,
        at: start,
        count: 0,
        failed: false,
    })
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<NdOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.at >= self.msg.len() {
            return None;
        }
        let r = (|| {
            if self.count == MAX_OPTIONS {
                return Err(Error::Unsupported);
            }
            let rest = &self.msg[self.at..];
            let units = *rest.get(field::OPT_LENGTH).ok_or(Error::Truncated)?;
            if units == 0 {
                return Err(Error::Malformed);
            }
            let len = usize::from(units) * OPTION_UNIT;
            let bytes = rest.get(..len).ok_or(Error::Truncated)?;
            Ok(NdOption {
                kind: bytes[field::OPT_TYPE],
                at: self.at,
                bytes,
            })
        })();
        match &r {
            Ok(o) => {
                self.at += o.bytes.len();
                self.count += 1;
            }
            Err(_) => self.failed = true,
        }
        Some(r)
    }
}

/// The prefix information option of a router advertisement (RFC 4861 4.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixInfo {
    pub prefix_len: u8,
    pub flags: u8,
    pub valid_lifetime: u32,
    pub preferred_lifetime: u32,
    pub prefix: Ipv6Addr,
}

/// An NDP message, with the options the daemon uses; others (the DAD
/// nonce, redirected headers, routing information) are skipped on parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr {
    RouterSolicit {
        lladdr: Option<Mac>,
    },
    RouterAdvert {
        hop_limit: u8,
        flags: u8,
        router_lifetime: u16,
        reachable_time: u32,
        retrans_time: u32,
        lladdr: Option<Mac>,
        mtu: Option<u32>,
        /// The first prefix information option (the others are read
        /// through [`options`]).
        prefix: Option<PrefixInfo>,
    },
    NeighborSolicit {
        target: Ipv6Addr,
        lladdr: Option<Mac>,
    },
    NeighborAdvert {
        flags: u8,
        target: Ipv6Addr,
        lladdr: Option<Mac>,
    },
    Redirect {
        target: Ipv6Addr,
        dest: Ipv6Addr,
        lladdr: Option<Mac>,
    },
}

impl Repr {
    /// Parses an NDP message from `src` to `dst`: code 0, checksum
    /// verified, options well formed, the link-layer option the message
    /// type may carry (source for RS, RA, NS; target for NA, Redirect).
    /// Other ICMPv6 types are [`Error::Unsupported`]. The hop limit (255)
    /// is in the IPv6 header: the caller checks it.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        p: &icmpv6::Packet<&T>,
    ) -> Result<Repr> {
        p.check_len()?;
        let msg = p.buffer.as_ref();
        let t = p.msg_type();
        let start = options_start(t).ok_or(Error::Unsupported)?;
        if msg.len() < start {
            return Err(Error::Truncated);
        }
        if p.msg_code() != NDP_CODE {
            return Err(Error::Malformed);
        }
        if !p.verify_checksum(src, dst) {
            return Err(Error::Checksum);
        }
        let (mut slla, mut tlla, mut mtu, mut prefix) = (None, None, None, None);
        for o in options(msg)? {
            let o = o?;
            match o.kind {
                option::SOURCE_LLADDR => slla = Some(o.lladdr()?),
                option::TARGET_LLADDR => tlla = Some(o.lladdr()?),
                option::MTU if o.bytes.len() == MTU_OPTION_LEN => {
                    mtu = Some(read_u32(o.bytes, field::OPT_MTU))
                }
                option::PREFIX_INFO if o.bytes.len() == PREFIX_OPTION_LEN => {
                    prefix = prefix.or(Some(PrefixInfo {
                        prefix_len: o.bytes[field::OPT_PREFIX_LEN],
                        flags: o.bytes[field::OPT_PREFIX_FLAGS],
                        valid_lifetime: read_u32(o.bytes, field::OPT_PREFIX_VALID),
                        preferred_lifetime: read_u32(o.bytes, field::OPT_PREFIX_PREFERRED),
                        prefix: address_at(o.bytes, field::OPT_PREFIX),
                    }))
                }
                option::MTU | option::PREFIX_INFO => return Err(Error::Malformed),
                _ => {}
            }
        }
        Ok(match t {
            msg_type::ROUTER_SOLICIT => Repr::RouterSolicit { lladdr: slla },
            msg_type::ROUTER_ADVERT => Repr::RouterAdvert {
                hop_limit: msg[field::RA_CUR_HOP_LIMIT],
                flags: msg[field::RA_FLAGS],
                router_lifetime: read_u16(msg, field::RA_ROUTER_LIFETIME),
                reachable_time: read_u32(msg, field::RA_REACHABLE_TIME),
                retrans_time: read_u32(msg, field::RA_RETRANS_TIME),
                lladdr: slla,
                mtu,
                prefix,
            },
            msg_type::NEIGHBOR_SOLICIT => {
                let target = address_at(msg, field::TARGET);
                // RFC 4861 7.1.1: the target is unicast; a DAD probe (from
                // `::`) goes to the target's solicited-node group and
                // carries no source link-layer address.
                if target.is_multicast()
                    || src.is_unspecified() && (*dst != ipv6::solicited_node(target) || slla.is_some())
                {
                    return Err(Error::Malformed);
                }
                Repr::NeighborSolicit { target, lladdr: slla }
            }
            msg_type::NEIGHBOR_ADVERT => {
                let (flags, target) = (msg[field::NA_FLAGS], address_at(msg, field::TARGET));
                // RFC 4861 7.1.2: the target is unicast; an answer to a
                // solicitation is never sent to a group.
                if target.is_multicast() || dst.is_multicast() && flags & na_flags::SOLICITED != 0 {
                    return Err(Error::Malformed);
                }
                Repr::NeighborAdvert {
                    flags,
                    target,
                    lladdr: tlla,
                }
            }
            _ => Repr::Redirect {
                target: address_at(msg, field::TARGET),
                dest: address_at(msg, field::REDIRECT_DEST),
                lladdr: tlla,
            },
        })
    }

    pub const fn msg_type(&self) -> u8 {
        match self {
            Repr::RouterSolicit { .. } => msg_type::ROUTER_SOLICIT,
            Repr::RouterAdvert { .. } => msg_type::ROUTER_ADVERT,
            Repr::NeighborSolicit { .. } => msg_type::NEIGHBOR_SOLICIT,
            Repr::NeighborAdvert { .. } => msg_type::NEIGHBOR_ADVERT,
            Repr::Redirect { .. } => msg_type::REDIRECT,
        }
    }

    fn lladdr(&self) -> Option<Mac> {
        match *self {
            Repr::RouterSolicit { lladdr }
            | Repr::RouterAdvert { lladdr, .. }
            | Repr::NeighborSolicit { lladdr, .. }
            | Repr::NeighborAdvert { lladdr, .. }
            | Repr::Redirect { lladdr, .. } => lladdr,
        }
    }

    /// Which link-layer option this message carries.
    const fn lladdr_kind(&self) -> u8 {
        match self {
            Repr::NeighborAdvert { .. } | Repr::Redirect { .. } => option::TARGET_LLADDR,
            _ => option::SOURCE_LLADDR,
        }
    }

    /// Bytes of the whole ICMPv6 message.
    pub fn buffer_len(&self) -> usize {
        let mut n = match options_start(self.msg_type()) {
            Some(s) => s,
            None => unreachable!("every Repr is an NDP type"),
        };
        if self.lladdr().is_some() {
            n += LLADDR_OPTION_LEN;
        }
        if let Repr::RouterAdvert { mtu, prefix, .. } = self {
            n += mtu.map_or(0, |_| MTU_OPTION_LEN) + prefix.map_or(0, |_| PREFIX_OPTION_LEN);
        }
        n
    }

    /// Writes the message, checksum (for `src` to `dst`) included, into a
    /// packet of exactly [`Repr::buffer_len`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        p: &mut icmpv6::Packet<T>,
    ) {
        p.set_msg_type(self.msg_type());
        p.set_msg_code(NDP_CODE);
        let mut at = options_start(self.msg_type()).unwrap_or(icmpv6::HEADER_LEN);
        let msg = p.buffer.as_mut();
        // Reserved fields are zero (RFC 4861); the buffer may not be.
        msg[icmpv6::field::BODY].fill(0);
        match *self {
            Repr::RouterSolicit { .. } => {}
            Repr::RouterAdvert {
                hop_limit,
                flags,
                router_lifetime,
                reachable_time,
                retrans_time,
                mtu,
                prefix,
                ..
            } => {
                msg[field::RA_CUR_HOP_LIMIT] = hop_limit;
                msg[field::RA_FLAGS] = flags;
                write_u16(msg, field::RA_ROUTER_LIFETIME, router_lifetime);
                msg[field::RA_REACHABLE_TIME].copy_from_slice(&reachable_time.to_be_bytes());
                msg[field::RA_RETRANS_TIME].copy_from_slice(&retrans_time.to_be_bytes());
                if let Some(m) = mtu {
                    let o = &mut msg[at..at + MTU_OPTION_LEN];
                    o[field::OPT_TYPE] = option::MTU;
                    o[field::OPT_LENGTH] = (MTU_OPTION_LEN / OPTION_UNIT) as u8;
                    o[field::OPT_MTU].copy_from_slice(&m.to_be_bytes());
                    at += MTU_OPTION_LEN;
                }
                if let Some(pi) = prefix {
                    let o = &mut msg[at..at + PREFIX_OPTION_LEN];
                    o[field::OPT_TYPE] = option::PREFIX_INFO;
                    o[field::OPT_LENGTH] = (PREFIX_OPTION_LEN / OPTION_UNIT) as u8;
                    o[field::OPT_PREFIX_LEN] = pi.prefix_len;
                    o[field::OPT_PREFIX_FLAGS] = pi.flags;
                    o[field::OPT_PREFIX_VALID].copy_from_slice(&pi.valid_lifetime.to_be_bytes());
                    o[field::OPT_PREFIX_PREFERRED].copy_from_slice(&pi.preferred_lifetime.to_be_bytes());
                    o[field::OPT_PREFIX].copy_from_slice(&pi.prefix.octets());
                    at += PREFIX_OPTION_LEN;
                }
            }
            Repr::NeighborSolicit { target, .. } => msg[field::TARGET].copy_from_slice(&target.octets()),
            Repr::NeighborAdvert { flags, target, .. } => {
                msg[field::NA_FLAGS] = flags;
                msg[field::TARGET].copy_from_slice(&target.octets());
            }
            Repr::Redirect { target, dest, .. } => {
                msg[field::TARGET].copy_from_slice(&target.octets());
                msg[field::REDIRECT_DEST].copy_from_slice(&dest.octets());
            }
        }
        if let Some(mac) = self.lladdr() {
            let o = &mut msg[at..at + LLADDR_OPTION_LEN];
            o[field::OPT_TYPE] = self.lladdr_kind();
            o[field::OPT_LENGTH] = LLADDR_OPTION_UNITS;
            o[field::OPT_LLADDR].copy_from_slice(&mac);
        }
        p.fill_checksum(src, dst);
    }

    /// A whole frame: Ethernet from `src_mac` to `dst_mac`, IPv6 from
    /// `src` to `dst` with hop limit 255, this message.
    pub fn frame(&self, src_mac: Mac, dst_mac: Mac, src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
        let ip = ipv6::Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: ipv6::next_header::ICMPV6,
            payload_len: self.buffer_len(),
            hop_limit: ipv6::NDP_HOP_LIMIT,
            traffic_class: 0,
            flow_label: 0,
        };
        let eth = ethernet::Repr {
            src_addr: src_mac,
            dst_addr: dst_mac,
            ethertype: ethernet::ethertype::IPV6,
        };
        ip.frame(eth, |b| {
            self.emit(&src, &dst, &mut icmpv6::Packet::new_unchecked(b))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{from_hex, KERNEL_DAD_NS, KERNEL_NA, KERNEL_NS, KERNEL_RS};

    /// (source, destination, hop limit, ICMPv6 message) of a captured frame.
    fn icmp_of(frame: &str) -> (Ipv6Addr, Ipv6Addr, u8, Vec<u8>) {
        let f = from_hex(frame);
        let ip = ipv6::Packet::new_checked(&f[ethernet::HEADER_LEN..]).unwrap();
        assert_eq!(ip.next_header(), ipv6::next_header::ICMPV6);
        (
            ip.src_addr(),
            ip.dst_addr(),
            ip.hop_limit(),
            ip.payload().to_vec(),
        )
    }

    fn parse(src: &Ipv6Addr, dst: &Ipv6Addr, b: &[u8]) -> Result<Repr> {
        Repr::parse(src, dst, &icmpv6::Packet::new_checked(b)?)
    }

    const MAC_A: Mac = [2, 0, 0, 0, 0, 0x0a];
    const MAC_B: Mac = [2, 0, 0, 0, 0, 0x0b];

    #[test]
    fn parses_kernel_messages_and_emits_them_again() {
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let cases = [
            (KERNEL_RS, Repr::RouterSolicit { lladdr: Some(MAC_A) }),
            (
                KERNEL_NS,
                Repr::NeighborSolicit {
                    target: b,
                    lladdr: Some(MAC_A),
                },
            ),
            (
                KERNEL_NA,
                Repr::NeighborAdvert {
                    flags: na_flags::SOLICITED | na_flags::OVERRIDE,
                    target: b,
                    lladdr: Some(MAC_B),
                },
            ),
        ];
        for (hex, want) in cases {
            let (src, dst, hop, msg) = icmp_of(hex);
            assert_eq!(hop, ipv6::NDP_HOP_LIMIT);
            let r = parse(&src, &dst, &msg).unwrap();
            assert_eq!(r, want);
            let mut out = vec![0xa5u8; r.buffer_len()];
            r.emit(&src, &dst, &mut icmpv6::Packet::new_unchecked(&mut out[..]));
            assert_eq!(out, msg, "{want:?}");
        }
        // Linux's DAD probe: from ::, no source link-layer option, a nonce (skipped).
        let (src, dst, _, msg) = icmp_of(KERNEL_DAD_NS);
        assert!(src.is_unspecified());
        assert_eq!(
            parse(&src, &dst, &msg),
            Ok(Repr::NeighborSolicit {
                target: "fe80::ff:fe00:a".parse().unwrap(),
                lladdr: None
            })
        );
        let kinds: Vec<u8> = options(&msg).unwrap().map(|o| o.unwrap().kind).collect();
        assert_eq!(kinds, [option::NONCE]);
        let _ = a;
    }

    fn every_kind() -> Vec<Repr> {
        let t: Ipv6Addr = "2001:db8::7".parse().unwrap();
        vec![
            Repr::RouterSolicit { lladdr: None },
            Repr::RouterAdvert {
                hop_limit: 64,
                flags: ra_flags::OTHER,
                router_lifetime: 1800,
                reachable_time: 30_000,
                retrans_time: 1_000,
                lladdr: Some(MAC_B),
                mtu: Some(1500),
                prefix: Some(PrefixInfo {
                    prefix_len: 64,
                    flags: prefix_flags::ON_LINK | prefix_flags::AUTONOMOUS,
                    valid_lifetime: 86_400,
                    preferred_lifetime: 14_400,
                    prefix: "2001:db8:1::".parse().unwrap(),
                }),
            },
            Repr::RouterAdvert {
                hop_limit: 0,
                flags: 0,
                router_lifetime: 0,
                reachable_time: 0,
                retrans_time: 0,
                lladdr: None,
                mtu: None,
                prefix: None,
            },
            Repr::NeighborSolicit {
                target: t,
                lladdr: None,
            },
            Repr::NeighborAdvert {
                flags: na_flags::OVERRIDE,
                target: t,
                lladdr: Some(MAC_A),
            },
            Repr::Redirect {
                target: "fe80::1".parse().unwrap(),
                dest: t,
                lladdr: Some(MAC_B),
            },
        ]
    }

    #[test]
    fn every_kind_round_trips_and_every_truncation_is_an_error() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        for r in every_kind() {
            let f = r.frame(MAC_A, MAC_B, src, ipv6::ALL_NODES);
            let ip = ipv6::Packet::new_checked(&f[ethernet::HEADER_LEN..]).unwrap();
            assert_eq!(ip.hop_limit(), ipv6::NDP_HOP_LIMIT);
            let msg = ip.payload();
            assert_eq!(msg.len(), r.buffer_len());
            assert_eq!(parse(&src, &ipv6::ALL_NODES, msg), Ok(r));
            for n in 0..msg.len() {
                assert!(parse(&src, &ipv6::ALL_NODES, &msg[..n]).is_err(), "{r:?} len {n}");
            }
        }
    }

    #[test]
    fn refuses_bad_options_codes_and_types() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let dst = ipv6::ALL_NODES;
        let r = Repr::NeighborSolicit {
            target: src,
            lladdr: Some(MAC_A),
        };
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&src, &dst, &mut icmpv6::Packet::new_unchecked(&mut b[..]));
        let opt = field::NS_NA_OPTIONS.start;
        let refill = |b: &mut [u8]| icmpv6::Packet::new_unchecked(b).fill_checksum(&src, &dst);
        let mut c = b.clone();
        c[opt + field::OPT_LENGTH] = 0;
        refill(&mut c);
        assert_eq!(parse(&src, &dst, &c), Err(Error::Malformed), "zero-length option");
        let mut c = b.clone();
        c[opt + field::OPT_LENGTH] = 2;
        refill(&mut c);
        assert_eq!(
            parse(&src, &dst, &c),
            Err(Error::Truncated),
            "option past the end"
        );
        let mut c = b.clone();
        c[icmpv6::field::CODE] = 1;
        refill(&mut c);
        assert_eq!(parse(&src, &dst, &c), Err(Error::Malformed), "code");
        let mut c = b.clone();
        c[opt + 2] ^= 1;
        assert_eq!(parse(&src, &dst, &c), Err(Error::Checksum));
        let mut c = b.clone();
        c[icmpv6::field::TYPE] = icmpv6::msg_type::ECHO_REQUEST;
        assert_eq!(parse(&src, &dst, &c), Err(Error::Unsupported));
        // A message of nothing but one-unit options stops at the bound.
        let mut many = b[..opt].to_vec();
        for _ in 0..=MAX_OPTIONS {
            many.extend_from_slice(&[option::NONCE, 1, 0, 0, 0, 0, 0, 0]);
        }
        refill(&mut many);
        assert_eq!(parse(&src, &dst, &many), Err(Error::Unsupported));
        assert_eq!(options(&many).unwrap().count(), MAX_OPTIONS + 1);
    }
}
