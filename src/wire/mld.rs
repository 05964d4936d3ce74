//! MLDv2 (RFC 3810): the general query the daemon injects into the group
//! interface so the kernel re-reports its IPv6 groups through the current
//! nominee (as [`super::igmp`] for IPv4), and the reports the kernel sends.
//! Each is an ICMPv6 message ([`icmpv6::Packet`]).

use super::icmpv6::{self, msg_type};
use super::ipv6::{self, address_at, ADDRESS_LEN};
use super::{ethernet, ipv6ext};
use super::{read_u16, write_u16, Error, Result};
use std::net::Ipv6Addr;

/// Bytes of a version 2 query without sources (a version 1 query is 24).
/// MLD is link-local control traffic (RFC 3810 5): hop limit 1.
pub const HOP_LIMIT: u8 = 1;
pub const QUERY_LEN: usize = field::QUERY_SOURCES.start;
/// Bytes of a report without records, and of a record without sources.
pub const REPORT_HEADER_LEN: usize = field::REPORT_RECORDS.start;
pub const RECORD_HEADER_LEN: usize = field::RECORD_SOURCES.start;
/// Most records or sources read from one message: a 1500-byte frame holds
/// fewer than 90 sources, 70 records.
pub const MAX_ENTRIES: usize = 128;
/// The querier's robustness variable lives in the low three bits.
const QRV_MASK: u8 = 0x07;
const S_FLAG: u8 = 0x08;
/// The auxiliary data length counts 32-bit words.
const AUX_UNIT: usize = 4;
/// Queries and reports have code 0.
const MLD_CODE: u8 = 0;

/// Record types of a report (RFC 3810 5.2.12).
pub mod record_type {
    pub const MODE_IS_INCLUDE: u8 = 1;
    pub const MODE_IS_EXCLUDE: u8 = 2;
    pub const CHANGE_TO_INCLUDE: u8 = 3;
    pub const CHANGE_TO_EXCLUDE: u8 = 4;
    pub const ALLOW_NEW_SOURCES: u8 = 5;
    pub const BLOCK_OLD_SOURCES: u8 = 6;
}

/// Byte ranges in the ICMPv6 message (type at 0), and in a record.
pub mod field {
    use crate::wire::{Field, Rest};
    /// Max response code, in milliseconds below 32768.
    pub const QUERY_MAX_RESP_CODE: Field = 4..6;
    pub const QUERY_MCAST_ADDR: Field = 8..24;
    /// Reserved (4 bits), suppress router-side processing (1), QRV (3).
    pub const QUERY_S_QRV: usize = 24;
    pub const QUERY_QQIC: usize = 25;
    pub const QUERY_NUM_SOURCES: Field = 26..28;
    pub const QUERY_SOURCES: Rest = 28..;

    pub const REPORT_NUM_RECORDS: Field = 6..8;
    pub const REPORT_RECORDS: Rest = 8..;

    pub const RECORD_TYPE: usize = 0;
    pub const RECORD_AUX_LEN: usize = 1;
    pub const RECORD_NUM_SOURCES: Field = 2..4;
    pub const RECORD_MCAST_ADDR: Field = 4..20;
    pub const RECORD_SOURCES: Rest = 20..;
}

/// One multicast address record of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub record_type: u8,
    pub mcast_addr: Ipv6Addr,
    /// The sources, 16 bytes each.
    pub sources: &'a [u8],
}

/// The records of a report: `count` of them in `b`, each whole. After an
/// error the iterator ends.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    b: &'a [u8],
    left: usize,
    failed: bool,
}

/// The records of the report body `b` (from [`field::REPORT_RECORDS`]).
pub fn records(b: &[u8], count: u16) -> Records<'_> {
    Records {
        b,
        left: usize::from(count),
        failed: false,
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.left == 0 {
            return None;
        }
        self.left -= 1;
        let r = (|| {
            let h = self.b.get(..RECORD_HEADER_LEN).ok_or(Error::Truncated)?;
            let n = usize::from(read_u16(h, field::RECORD_NUM_SOURCES));
            if n > MAX_ENTRIES {
                return Err(Error::Unsupported);
            }
            let src_len = n * ADDRESS_LEN;
            let len = RECORD_HEADER_LEN + src_len + usize::from(h[field::RECORD_AUX_LEN]) * AUX_UNIT;
            let rec = self.b.get(..len).ok_or(Error::Truncated)?;
            self.b = &self.b[len..];
            Ok(Record {
                record_type: rec[field::RECORD_TYPE],
                mcast_addr: address_at(rec, field::RECORD_MCAST_ADDR),
                sources: &rec[RECORD_HEADER_LEN..RECORD_HEADER_LEN + src_len],
            })
        })();
        self.failed = r.is_err();
        Some(r)
    }
}

/// An MLDv2 query or report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr<'a> {
    /// A general query when `mcast_addr` is `::`.
    Query {
        max_resp_code: u16,
        mcast_addr: Ipv6Addr,
        s_flag: bool,
        qrv: u8,
        qqic: u8,
        /// The sources, 16 bytes each.
        sources: &'a [u8],
    },
    Report {
        nr_records: u16,
        /// The records, each checked whole by [`records`].
        records: &'a [u8],
    },
}

impl<'a> Repr<'a> {
    /// Parses a version 2 query or report from `src` to `dst` whose
    /// checksum verifies and whose sources and records are whole; other
    /// messages (MLDv1 among them) are [`Error::Unsupported`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        p: &icmpv6::Packet<&'a T>,
    ) -> Result<Repr<'a>> {
        p.check_len()?;
        let msg: &'a [u8] = p.buffer.as_ref();
        if p.msg_code() != MLD_CODE {
            return Err(Error::Malformed);
        }
        let r = match p.msg_type() {
            msg_type::MLD_QUERY if msg.len() >= QUERY_LEN => {
                let n = usize::from(read_u16(msg, field::QUERY_NUM_SOURCES));
                if n > MAX_ENTRIES {
                    return Err(Error::Unsupported);
                }
                let sources = msg[field::QUERY_SOURCES]
                    .get(..n * ADDRESS_LEN)
                    .ok_or(Error::Truncated)?;
                Repr::Query {
                    max_resp_code: read_u16(msg, field::QUERY_MAX_RESP_CODE),
                    mcast_addr: address_at(msg, field::QUERY_MCAST_ADDR),
                    s_flag: msg[field::QUERY_S_QRV] & S_FLAG != 0,
                    qrv: msg[field::QUERY_S_QRV] & QRV_MASK,
                    qqic: msg[field::QUERY_QQIC],
                    sources,
                }
            }
            // A shorter query is version 1 (or cut short): the daemon only speaks 2.
            msg_type::MLD_QUERY => return Err(Error::Unsupported),
            msg_type::MLDV2_REPORT => {
                if msg.len() < REPORT_HEADER_LEN {
                    return Err(Error::Truncated);
                }
                let nr_records = read_u16(msg, field::REPORT_NUM_RECORDS);
                if usize::from(nr_records) > MAX_ENTRIES {
                    return Err(Error::Unsupported);
                }
                let body = &msg[field::REPORT_RECORDS];
                let mut it = records(body, nr_records);
                for r in it.by_ref() {
                    r?;
                }
                let consumed = body.len() - it.b.len();
                Repr::Report {
                    nr_records,
                    records: &body[..consumed],
                }
            }
            _ => return Err(Error::Unsupported),
        };
        if !p.verify_checksum(src, dst) {
            return Err(Error::Checksum);
        }
        Ok(r)
    }

    /// A whole frame: Ethernet from `src_mac` to `dst`'s multicast MAC,
    /// IPv6 from `src` to `dst` with hop limit 1 and the Hop-by-Hop Router
    /// Alert option (RFC 3810 5: what Linux requires of MLD), this message.
    pub fn frame(&self, src_mac: [u8; 6], src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
        let hbh = ipv6ext::Repr::HopByHop {
            next_header: ipv6::next_header::ICMPV6,
            router_alert_mld: true,
        };
        let ip = ipv6::Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: hbh.kind(),
            payload_len: hbh.buffer_len() + self.buffer_len(),
            hop_limit: HOP_LIMIT,
            traffic_class: 0,
            flow_label: 0,
        };
        let eth = ethernet::Repr {
            src_addr: src_mac,
            dst_addr: ipv6::multicast_mac(dst),
            ethertype: ethernet::ethertype::IPV6,
        };
        ip.frame(eth, |b| {
            let (h, msg) = b.split_at_mut(hbh.buffer_len());
            hbh.emit(&mut ipv6ext::Header::new_unchecked(h, hbh.kind()));
            self.emit(&src, &dst, &mut icmpv6::Packet::new_unchecked(msg));
        })
    }

    pub fn buffer_len(&self) -> usize {
        match self {
            Repr::Query { sources, .. } => QUERY_LEN + sources.len(),
            Repr::Report { records, .. } => REPORT_HEADER_LEN + records.len(),
        }
    }

    /// Writes the message, checksum (for `src` to `dst`) included, into a
    /// packet of exactly [`Repr::buffer_len`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        p: &mut icmpv6::Packet<T>,
    ) {
        let msg = p.buffer.as_mut();
        msg[icmpv6::field::BODY].fill(0);
        match *self {
            Repr::Query {
                max_resp_code,
                mcast_addr,
                s_flag,
                qrv,
                qqic,
                sources,
            } => {
                p.set_msg_type(msg_type::MLD_QUERY);
                let msg = p.buffer.as_mut();
                write_u16(msg, field::QUERY_MAX_RESP_CODE, max_resp_code);
                msg[field::QUERY_MCAST_ADDR].copy_from_slice(&mcast_addr.octets());
                msg[field::QUERY_S_QRV] = if s_flag { S_FLAG } else { 0 } | qrv & QRV_MASK;
                msg[field::QUERY_QQIC] = qqic;
                write_u16(
                    msg,
                    field::QUERY_NUM_SOURCES,
                    (sources.len() / ADDRESS_LEN) as u16,
                );
                msg[field::QUERY_SOURCES][..sources.len()].copy_from_slice(sources);
            }
            Repr::Report { nr_records, records } => {
                p.set_msg_type(msg_type::MLDV2_REPORT);
                let msg = p.buffer.as_mut();
                write_u16(msg, field::REPORT_NUM_RECORDS, nr_records);
                msg[field::REPORT_RECORDS][..records.len()].copy_from_slice(records);
            }
        }
        p.set_msg_code(MLD_CODE);
        p.fill_checksum(src, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{ethernet, from_hex, ipv6, ipv6ext, KERNEL_MLD_REPORT};

    #[test]
    fn parses_a_kernel_report() {
        let f = from_hex(KERNEL_MLD_REPORT);
        let ip = ipv6::Packet::new_checked(&f[ethernet::HEADER_LEN..]).unwrap();
        assert_eq!(ip.hop_limit(), 1);
        let up = ipv6ext::walk(ip.next_header(), ip.payload()).unwrap();
        let msg = &ip.payload()[up.offset..];
        let p = icmpv6::Packet::new_checked(msg).unwrap();
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        assert_eq!(dst, ipv6::ALL_MLDV2_ROUTERS);
        let r = Repr::parse(&src, &dst, &p).unwrap();
        let Repr::Report {
            nr_records,
            records: recs,
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(nr_records, 1);
        let all: Vec<Record> = records(recs, nr_records).map(|r| r.unwrap()).collect();
        assert_eq!(
            all,
            [Record {
                record_type: record_type::CHANGE_TO_EXCLUDE,
                mcast_addr: "ff02::1:ff00:b".parse().unwrap(),
                sources: &[],
            }]
        );
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&src, &dst, &mut icmpv6::Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, msg);
    }

    #[test]
    fn queries_round_trip_and_truncations_are_errors() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let s: Vec<u8> = (0..32).collect();
        for q in [
            Repr::Query {
                max_resp_code: 1000,
                mcast_addr: Ipv6Addr::UNSPECIFIED,
                s_flag: false,
                qrv: 2,
                qqic: 125,
                sources: &[],
            },
            Repr::Query {
                max_resp_code: 10,
                mcast_addr: "ff05::1:3".parse().unwrap(),
                s_flag: true,
                qrv: 7,
                qqic: 10,
                sources: &s,
            },
        ] {
            let mut b = vec![0xffu8; q.buffer_len()];
            q.emit(
                &src,
                &ipv6::ALL_NODES,
                &mut icmpv6::Packet::new_unchecked(&mut b[..]),
            );
            let p = icmpv6::Packet::new_checked(&b[..]).unwrap();
            assert_eq!(Repr::parse(&src, &ipv6::ALL_NODES, &p), Ok(q));
            for n in 0..b.len() {
                let r = icmpv6::Packet::new_checked(&b[..n])
                    .and_then(|p| Repr::parse(&src, &ipv6::ALL_NODES, &p));
                assert!(r.is_err(), "len {n}");
            }
        }
    }

    #[test]
    fn reports_with_sources_and_aux_data_round_trip() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let dst = ipv6::ALL_MLDV2_ROUTERS;
        // Two records: one with two sources and one word of aux data.
        let mut recs = vec![record_type::MODE_IS_INCLUDE, 1, 0, 2];
        recs.extend_from_slice(&"ff05::2".parse::<Ipv6Addr>().unwrap().octets());
        recs.extend_from_slice(&[0x11; 32]);
        recs.extend_from_slice(&[0xaa; 4]);
        recs.extend_from_slice(&[record_type::ALLOW_NEW_SOURCES, 0, 0, 0]);
        recs.extend_from_slice(&"ff05::3".parse::<Ipv6Addr>().unwrap().octets());
        let r = Repr::Report {
            nr_records: 2,
            records: &recs,
        };
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&src, &dst, &mut icmpv6::Packet::new_unchecked(&mut b[..]));
        let p = icmpv6::Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&src, &dst, &p), Ok(r));
        let got: Vec<Record> = records(&recs, 2).map(|r| r.unwrap()).collect();
        assert_eq!(got[0].sources.len(), 32);
        assert_eq!(got[1].mcast_addr, "ff05::3".parse::<Ipv6Addr>().unwrap());
        for n in 0..b.len() {
            let r = icmpv6::Packet::new_checked(&b[..n]).and_then(|p| Repr::parse(&src, &dst, &p));
            assert!(r.is_err(), "len {n}");
        }
        // More records claimed than present.
        let mut c = b.clone();
        c[field::REPORT_NUM_RECORDS.end - 1] = 3;
        icmpv6::Packet::new_unchecked(&mut c[..]).fill_checksum(&src, &dst);
        assert_eq!(
            Repr::parse(&src, &dst, &icmpv6::Packet::new_unchecked(&c[..])),
            Err(Error::Truncated)
        );
        // An MLDv1 query (24 bytes) is not ours.
        let mut v1 = [0u8; QUERY_LEN - 4];
        v1[icmpv6::field::TYPE] = msg_type::MLD_QUERY;
        assert_eq!(
            Repr::parse(&src, &dst, &icmpv6::Packet::new_unchecked(&v1[..])),
            Err(Error::Unsupported)
        );
    }
}
