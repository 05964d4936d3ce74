//! Netlink messages: the link, address and route records the daemon uses,
//! the decoding of replies and events into them, and the building of the
//! change requests. Pure byte work, no sockets.
//!
//! Messages are built with `netlink-packet-route`, but replies are decoded
//! attribute by attribute and only for the attributes we use, so one
//! attribute the crate cannot decode (new kernel, exotic driver) costs that
//! attribute, not the whole link or address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use log::debug;
use netlink_packet_core::{
    ErrorBuffer, NetlinkBuffer, NetlinkHeader, NlasIterator, Parseable, ParseableParametrized,
    NLM_F_ACK_TLVS, NLM_F_CAPPED,
};
use netlink_packet_route::address::{AddressAttribute, AddressHeader, AddressMessage};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkHeader, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteLwEnCapType, RouteMessage, RouteProtocol, RouteScope,
    RouteType, RouteVia,
};
use netlink_packet_route::tc::TcHeader;
use netlink_packet_route::AddressFamily;

use super::error::{Fault, ParseError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    /// IFLA_ADDRESS when it is 6 bytes long (Ethernet-like).
    pub mac: Option<[u8; 6]>,
    pub mtu: u32,
    /// IFF_UP: administratively up.
    pub up: bool,
    /// IFF_LOWER_UP: carrier.
    pub lower_up: bool,
    /// IFLA_MASTER: bridge, bond, VRF... this link is enslaved to.
    pub master: Option<u32>,
    /// IFLA_LINK (VLAN parent, veth peer...), only when that index is in our
    /// namespace and differs from `index`.
    pub link: Option<u32>,
    /// IFLA_INFO_KIND ("veth", "bridge", "vlan", "tun", ...).
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrInfo {
    pub index: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// IFA_F_* bits (IFA_FLAGS when present, else the header byte):
    /// an IPv6 address is usable once neither tentative nor DAD-failed.
    pub flags: u32,
}

impl AddrInfo {
    /// The kernel still runs (or has failed) duplicate address detection
    /// for it: it must not be announced or answered for yet.
    pub fn dad_pending_or_failed(&self) -> bool {
        self.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED) != 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// RTA_TABLE if present, else the header's table.
    pub table: u32,
    /// RTPROT_* raw value (2 = kernel, 3 = boot, 4 = static ...).
    pub protocol: u8,
    /// RTN_* raw value (1 = unicast, 2 = local ...).
    pub kind: u8,
    /// None for a default route (the kernel omits RTA_DST then).
    pub dst: Option<IpAddr>,
    pub dst_len: u8,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
}

pub const RTPROT_KERNEL: u8 = 2;

/// One queueing discipline (`tc qdisc show`): where it hangs and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QdiscInfo {
    pub index: u32,
    /// TCA_KIND ("fq_codel", "tbf", "clsact", ...); empty if absent.
    pub kind: String,
    /// tcm_parent: [`TC_H_ROOT`], [`TC_H_INGRESS`] or a class handle.
    pub parent: u32,
    /// tcm_handle (major:minor); 0 for the kernel's default qdiscs.
    pub handle: u32,
}

/// tcm_parent of a root qdisc.
pub const TC_H_ROOT: u32 = 0xFFFF_FFFF;
/// tcm_parent of an ingress or clsact qdisc.
pub const TC_H_INGRESS: u32 = 0xFFFF_FFF1;

/// An IPv6 address with what it takes to add it again as it was: the
/// flags an administrator can set, its preferred lifetime (0: deprecated),
/// the IFA_PROTO origin and the prefix route metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr6Detail {
    pub index: u32,
    pub addr: Ipv6Addr,
    pub prefix_len: u8,
    /// IFA_F_* bits (IFA_FLAGS when present, else the header byte).
    pub flags: u32,
    /// Seconds; u32::MAX is forever.
    pub valid_lft: u32,
    pub preferred_lft: u32,
    /// IFA_PROTO, 0 when absent.
    pub proto: u8,
    /// IFA_RT_PRIORITY, when set.
    pub metric: Option<u32>,
}

/// A single-path IPv6 route through one link, with what it takes to add
/// it again as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route6Detail {
    pub table: u32,
    /// RTPROT_*.
    pub protocol: u8,
    pub dst: Ipv6Addr,
    pub dst_len: u8,
    pub gateway: Option<Ipv6Addr>,
    pub oif: u32,
    /// RTA_PRIORITY.
    pub metric: Option<u32>,
    /// RTNH_F_ONLINK.
    pub onlink: bool,
    /// RTA_PREF (ICMPV6_ROUTER_PREF_*), when present.
    pub pref: Option<u8>,
}

/// RTPROT_RA: routes the kernel learnt from router advertisements.
pub const RTPROT_RA: u8 = 9;
const RTN_UNICAST: u8 = 1;
const RTA_PRIORITY: u16 = 6;
const RTA_MULTIPATH: u16 = 9;
const RTA_PREF: u16 = 20;

pub const IFA_F_NODAD: u32 = 0x02;
pub const IFA_F_DADFAILED: u32 = 0x08;
pub const IFA_F_TENTATIVE: u32 = 0x40;
pub const IFA_F_OPTIMISTIC: u32 = 0x04;
pub const IFA_F_HOMEADDRESS: u32 = 0x10;
pub const IFA_F_TEMPORARY: u32 = 0x01;
pub const IFA_F_PERMANENT: u32 = 0x80;
pub const IFA_F_MANAGETEMPADDR: u32 = 0x100;
pub const IFA_F_NOPREFIXROUTE: u32 = 0x200;
pub const IFA_F_MCAUTOJOIN: u32 = 0x400;
/// IFA_PROTO values the kernel sets on addresses it generates itself.
pub const IFAPROT_KERNEL_LO: u8 = 1;
pub const IFAPROT_KERNEL_RA: u8 = 2;
pub const IFAPROT_KERNEL_LL: u8 = 3;
/// Lifetime meaning "forever".
pub const INFINITY_LIFE_TIME: u32 = u32::MAX;

// Message types and attribute numbers from linux/rtnetlink.h, if_link.h,
// if_addr.h; netlink-packet-route keeps its own copies private.
pub(super) const RTM_NEWLINK: u16 = 16;
pub(super) const RTM_DELLINK: u16 = 17;
pub(super) const RTM_NEWADDR: u16 = 20;
pub(super) const RTM_DELADDR: u16 = 21;
pub(super) const RTM_NEWROUTE: u16 = 24;
pub(super) const RTM_NEWQDISC: u16 = 36;
pub(super) const RTM_DELQDISC: u16 = 37;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINK: u16 = 5;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_LINK_NETNSID: u16 = 37;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_TABLE: u16 = 15;
const RTA_VIA: u16 = 18;

const TCA_KIND: u16 = 1;
// Longest qdisc kind the kernel has (IFNAMSIZ, its own bound on TCA_KIND).
const TC_KIND_MAX: usize = 16;

pub(super) const NLMSGERR_ATTR_MSG: u16 = 1;

// Fixed header sizes of ifinfomsg, ifaddrmsg, rtmsg and nlmsghdr.
const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;
const RTMSG_LEN: usize = 12;
const TCMSG_LEN: usize = 20;
pub(super) const NLMSGHDR_LEN: usize = 16;
// The int error code that starts an nlmsgerr.
const NLMSGERR_CODE_LEN: usize = 4;
// Messages are aligned to this inside a datagram.
const NLMSG_ALIGNTO: usize = 4;

/// NLMSG_ALIGN: where the next message starts after one of `len` bytes.
fn nlmsg_align(len: usize) -> usize {
    len.div_ceil(NLMSG_ALIGNTO) * NLMSG_ALIGNTO
}

/// Splits a datagram into (header, payload) pairs. A malformed length ends
/// the walk with an error: everything after it would be garbage anyway.
pub(super) fn for_each_message(
    data: &[u8],
    mut f: impl FnMut(&NetlinkHeader, &[u8]) -> Result<(), Fault>,
) -> Result<(), Fault> {
    let mut off = 0;
    while off + NLMSGHDR_LEN <= data.len() {
        let nb = NetlinkBuffer::new_checked(&data[off..]).map_err(ParseError::Framing)?;
        let header = NetlinkHeader::parse(&nb).map_err(ParseError::Header)?;
        f(&header, nb.payload())?;
        off += nlmsg_align(header.length as usize);
    }
    Ok(())
}

/// The error an NLMSG_ERROR carries: `Ok(None)` for an ack (code 0),
/// else a [`Fault::Kernel`] with the extended-ack text, if any.
pub(super) fn parse_error_payload(flags: u16, payload: &[u8]) -> Result<Option<Fault>, ParseError> {
    let eb = ErrorBuffer::new_checked(payload).map_err(ParseError::ErrorMessage)?;
    let Some(code) = eb.code() else {
        return Ok(None);
    };
    Ok(Some(Fault::Kernel {
        errno: code.get().saturating_neg(),
        extack: extack_message(flags, &payload[NLMSGERR_CODE_LEN..]),
    }))
}

/// Pulls NLMSGERR_ATTR_MSG out of an extended ack. `rest` starts at the
/// echoed request header: just that header when capped, else the whole
/// request, followed by the TLVs.
fn extack_message(flags: u16, rest: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 || rest.len() < NLMSGHDR_LEN {
        return None;
    }
    let echoed = if flags & NLM_F_CAPPED != 0 {
        NLMSGHDR_LEN
    } else {
        // The echoed request's own nlmsg_len (rest holds a whole header).
        nlmsg_align(NetlinkBuffer::new(rest).length() as usize)
    };
    extack_text(rest.get(echoed..)?)
}

pub(super) fn extack_text(tlvs: &[u8]) -> Option<String> {
    NlasIterator::new(tlvs)
        .filter_map(Result::ok)
        .find(|nla| nla.kind() == NLMSGERR_ATTR_MSG)
        .map(|nla| {
            let v = nla.value();
            let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
            String::from_utf8_lossy(&v[..end]).into_owned()
        })
        .filter(|s| !s.is_empty())
}

/// Decodes an RTM_NEWLINK/RTM_DELLINK payload. `Ok(None)` for messages of
/// another family: the bridge sends AF_BRIDGE copies of port events on the
/// same group, and their DELLINK only means "left the bridge".
pub(super) fn parse_link(payload: &[u8]) -> Result<Option<LinkInfo>, ParseError> {
    let header = LinkHeader::parse(payload)?;
    if header.interface_family != AddressFamily::Unspec {
        return Ok(None);
    }
    let mut info = LinkInfo {
        index: header.index,
        name: String::new(),
        mac: None,
        mtu: 0,
        up: header.flags.contains(LinkFlags::Up),
        lower_up: header.flags.contains(LinkFlags::LowerUp),
        master: None,
        link: None,
        kind: None,
    };
    let mut link = None;
    let mut other_netns = false;
    for nla in NlasIterator::new(&payload[IFINFOMSG_LEN..]) {
        let nla = nla?;
        match nla.kind() {
            IFLA_ADDRESS | IFLA_IFNAME | IFLA_MTU | IFLA_LINK | IFLA_MASTER | IFLA_LINK_NETNSID => {
                match LinkAttribute::parse_with_param(&nla, header.interface_family) {
                    Ok(LinkAttribute::Address(a)) => info.mac = a.as_slice().try_into().ok(),
                    Ok(LinkAttribute::IfName(n)) => info.name = n,
                    Ok(LinkAttribute::Mtu(m)) => info.mtu = m,
                    Ok(LinkAttribute::Link(l)) => link = Some(l),
                    Ok(LinkAttribute::Controller(m)) => info.master = Some(m),
                    Ok(LinkAttribute::LinkNetNsId(_)) => other_netns = true,
                    Ok(_) => {}
                    Err(e) => debug!("link {}: skipping attribute {}: {e}", header.index, nla.kind()),
                }
            }
            IFLA_LINKINFO => info.kind = parse_info_kind(nla.value()),
            _ => {}
        }
    }
    if info.name.is_empty() {
        return Err(ParseError::LinkWithoutName { index: header.index });
    }
    info.link = link.filter(|&l| !other_netns && l != 0 && l != info.index);
    Ok(Some(info))
}

/// Only IFLA_INFO_KIND is decoded: IFLA_INFO_DATA is driver specific and
/// the likeliest thing to fail to parse.
fn parse_info_kind(linkinfo: &[u8]) -> Option<String> {
    NlasIterator::new(linkinfo)
        .filter_map(Result::ok)
        .find(|nla| nla.kind() == IFLA_INFO_KIND)
        .and_then(|nla| InfoKind::parse(&nla).ok())
        .map(|k| k.to_string())
}

/// Decodes an RTM_NEWADDR/RTM_DELADDR payload; `Ok(None)` for families
/// other than IPv4/IPv6.
pub(super) fn parse_addr(payload: &[u8]) -> Result<Option<AddrInfo>, ParseError> {
    let header = AddressHeader::parse(payload)?;
    if !matches!(header.family, AddressFamily::Inet | AddressFamily::Inet6) {
        return Ok(None);
    }
    let mut local = None;
    let mut address = None;
    let mut flags = u32::from(header.flags.bits());
    for nla in NlasIterator::new(&payload[IFADDRMSG_LEN..]) {
        let nla = nla?;
        if !matches!(nla.kind(), IFA_ADDRESS | IFA_LOCAL | IFA_FLAGS) {
            continue;
        }
        match AddressAttribute::parse(&nla) {
            Ok(AddressAttribute::Local(a)) => local = Some(a),
            Ok(AddressAttribute::Address(a)) => address = Some(a),
            Ok(AddressAttribute::Flags(f)) => flags = f.bits(),
            Ok(_) => {}
            Err(e) => debug!("address on {}: skipping attribute: {e}", header.index),
        }
    }
    // IFA_LOCAL is our own address; IFA_ADDRESS is the peer on
    // point-to-point links and equal to IFA_LOCAL otherwise (same rule as
    // getifaddrs and iproute2).
    let addr = local
        .or(address)
        .ok_or(ParseError::AddressWithoutValue { index: header.index })?;
    Ok(Some(AddrInfo {
        index: header.index,
        addr,
        prefix_len: header.prefix_len,
        flags,
    }))
}

/// Decodes an RTM_NEWADDR payload into an [`Addr6Detail`]; `Ok(None)`
/// for other families.
pub(super) fn parse_addr6(payload: &[u8]) -> Result<Option<Addr6Detail>, ParseError> {
    let header = AddressHeader::parse(payload)?;
    if header.family != AddressFamily::Inet6 {
        return Ok(None);
    }
    let mut d = Addr6Detail {
        index: header.index,
        addr: Ipv6Addr::UNSPECIFIED,
        prefix_len: header.prefix_len,
        flags: u32::from(header.flags.bits()),
        valid_lft: INFINITY_LIFE_TIME,
        preferred_lft: INFINITY_LIFE_TIME,
        proto: 0,
        metric: None,
    };
    let mut found = None;
    for nla in NlasIterator::new(&payload[IFADDRMSG_LEN..]) {
        let nla = nla?;
        match AddressAttribute::parse(&nla) {
            Ok(AddressAttribute::Local(IpAddr::V6(a))) => found = Some(a),
            Ok(AddressAttribute::Address(IpAddr::V6(a))) => found = found.or(Some(a)),
            Ok(AddressAttribute::Flags(f)) => d.flags = f.bits(),
            Ok(AddressAttribute::CacheInfo(c)) => {
                d.valid_lft = c.ifa_valid;
                d.preferred_lft = c.ifa_preferred;
            }
            Ok(AddressAttribute::Protocol(p)) => d.proto = u8::from(p),
            Ok(AddressAttribute::RoutePriority(m)) => d.metric = Some(m),
            Ok(_) => {}
            Err(e) => debug!("address on {}: skipping attribute: {e}", header.index),
        }
    }
    d.addr = found.ok_or(ParseError::Ipv6AddressWithoutValue { index: header.index })?;
    Ok(Some(d))
}

fn route_addr(a: RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(v6)),
        _ => None,
    }
}

/// Decodes an RTM_NEWROUTE payload; `Ok(None)` for families other than
/// IPv4/IPv6 (multicast routing tables, MPLS).
pub(super) fn parse_route(payload: &[u8]) -> Result<Option<RouteInfo>, ParseError> {
    let header = RouteHeader::parse(payload)?;
    let family = header.address_family;
    if !matches!(family, AddressFamily::Inet | AddressFamily::Inet6) {
        return Ok(None);
    }
    let mut info = RouteInfo {
        table: u32::from(header.table),
        protocol: header.protocol.into(),
        kind: header.kind.into(),
        dst: None,
        dst_len: header.destination_prefix_length,
        gateway: None,
        oif: None,
    };
    for nla in NlasIterator::new(&payload[RTMSG_LEN..]) {
        let nla = nla?;
        if !matches!(nla.kind(), RTA_DST | RTA_OIF | RTA_GATEWAY | RTA_TABLE | RTA_VIA) {
            continue;
        }
        // The encap type only matters for RTA_ENCAP, which we skip.
        match RouteAttribute::parse_with_param(&nla, (family, header.kind, RouteLwEnCapType::None)) {
            Ok(RouteAttribute::Destination(a)) => info.dst = route_addr(a),
            Ok(RouteAttribute::Gateway(a)) => info.gateway = route_addr(a),
            Ok(RouteAttribute::Via(RouteVia::Inet(v4))) => info.gateway = Some(IpAddr::V4(v4)),
            Ok(RouteAttribute::Via(RouteVia::Inet6(v6))) => info.gateway = Some(IpAddr::V6(v6)),
            Ok(RouteAttribute::Oif(i)) => info.oif = Some(i),
            Ok(RouteAttribute::Table(t)) => info.table = t,
            Ok(_) => {}
            Err(e) => debug!("route: skipping attribute {}: {e}", nla.kind()),
        }
    }
    Ok(Some(info))
}

/// Decodes an RTM_NEWROUTE payload into a [`Route6Detail`]; `Ok(None)`
/// for other families, non-unicast, multipath or device-less routes.
pub(super) fn parse_route6(payload: &[u8]) -> Result<Option<Route6Detail>, ParseError> {
    use netlink_packet_route::route::RouteFlags;
    let header = RouteHeader::parse(payload)?;
    let family = header.address_family;
    if family != AddressFamily::Inet6
        || u8::from(header.kind) != RTN_UNICAST
        || header.source_prefix_length != 0
    {
        return Ok(None);
    }
    let mut r = Route6Detail {
        table: u32::from(header.table),
        protocol: header.protocol.into(),
        dst: Ipv6Addr::UNSPECIFIED,
        dst_len: header.destination_prefix_length,
        gateway: None,
        oif: 0,
        metric: None,
        onlink: header.flags.contains(RouteFlags::Onlink),
        pref: None,
    };
    for nla in NlasIterator::new(&payload[RTMSG_LEN..]) {
        let nla = nla?;
        if nla.kind() == RTA_MULTIPATH {
            return Ok(None);
        }
        if !matches!(
            nla.kind(),
            RTA_DST | RTA_OIF | RTA_GATEWAY | RTA_TABLE | RTA_PRIORITY | RTA_PREF
        ) {
            continue;
        }
        match RouteAttribute::parse_with_param(&nla, (family, header.kind, RouteLwEnCapType::None)) {
            Ok(RouteAttribute::Destination(RouteAddress::Inet6(a))) => r.dst = a,
            Ok(RouteAttribute::Gateway(RouteAddress::Inet6(a))) => r.gateway = Some(a),
            Ok(RouteAttribute::Oif(i)) => r.oif = i,
            Ok(RouteAttribute::Table(t)) => r.table = t,
            Ok(RouteAttribute::Priority(m)) => r.metric = Some(m),
            Ok(RouteAttribute::Preference(p)) => r.pref = Some(p.into()),
            Ok(_) => {}
            Err(e) => debug!("route: skipping attribute {}: {e}", nla.kind()),
        }
    }
    Ok((r.oif != 0).then_some(r))
}

/// Decodes an RTM_NEWQDISC/RTM_DELQDISC payload (tcmsg, then TCA_KIND);
/// `Ok(None)` for a message about no interface (a shared block).
pub(super) fn parse_qdisc(payload: &[u8]) -> Result<Option<QdiscInfo>, ParseError> {
    let header = TcHeader::parse(payload)?;
    let Ok(index) = u32::try_from(header.index) else {
        return Ok(None);
    };
    if index == 0 {
        return Ok(None);
    }
    let kind = NlasIterator::new(payload.get(TCMSG_LEN..).unwrap_or(&[]))
        .filter_map(Result::ok)
        .find(|nla| nla.kind() == TCA_KIND)
        .map(|nla| {
            let v = nla.value();
            let end = v.iter().position(|&b| b == 0).unwrap_or(v.len()).min(TC_KIND_MAX);
            String::from_utf8_lossy(&v[..end]).into_owned()
        })
        .unwrap_or_default();
    Ok(Some(QdiscInfo {
        index,
        kind,
        parent: header.parent.into(),
        handle: header.handle.into(),
    }))
}

pub(super) fn broadcast_v4(addr: Ipv4Addr, prefix_len: u8) -> Option<Ipv4Addr> {
    // /31 (RFC 3021) and /32 have no broadcast address.
    if prefix_len >= 31 {
        return None;
    }
    let host_mask = u32::MAX >> prefix_len;
    Some(Ipv4Addr::from(u32::from(addr) | host_mask))
}

pub(super) use crate::wire::ethernet::format as fmt_mac;

/// An IPv4 address message (RTM_NEWADDR / RTM_DELADDR body).
pub(super) fn addr_v4(index: u32, addr: Ipv4Addr, prefix_len: u8) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = AddressFamily::Inet;
    msg.header.prefix_len = prefix_len;
    msg.header.index = index;
    msg.attributes.push(AddressAttribute::Local(addr.into()));
    msg.attributes.push(AddressAttribute::Address(addr.into()));
    msg
}

/// An IPv6 address with its flags, lifetimes, origin and metric, as
/// [`parse_addr6`] read them.
pub(super) fn addr_v6(index: u32, a: &Addr6Detail) -> AddressMessage {
    use netlink_packet_route::address::{AddressFlags, AddressProtocol, CacheInfo};
    let mut msg = AddressMessage::default();
    msg.header.family = AddressFamily::Inet6;
    msg.header.prefix_len = a.prefix_len;
    msg.header.index = index;
    msg.attributes.push(AddressAttribute::Local(a.addr.into()));
    msg.attributes.push(AddressAttribute::Address(a.addr.into()));
    msg.attributes
        .push(AddressAttribute::Flags(AddressFlags::from_bits_retain(a.flags)));
    if a.valid_lft != INFINITY_LIFE_TIME || a.preferred_lft != INFINITY_LIFE_TIME {
        let mut ci = CacheInfo::default();
        ci.ifa_preferred = a.preferred_lft;
        ci.ifa_valid = a.valid_lft;
        msg.attributes.push(AddressAttribute::CacheInfo(ci));
    }
    if a.proto != 0 {
        msg.attributes
            .push(AddressAttribute::Protocol(AddressProtocol::from(a.proto)));
    }
    if let Some(m) = a.metric {
        msg.attributes.push(AddressAttribute::RoutePriority(m));
    }
    msg
}

/// A unicast route in the main table with RTPROT_STATIC; link scope when
/// there is no gateway (directly connected).
pub(super) fn route_v4(index: u32, dst: Ipv4Addr, dst_len: u8, gateway: Option<Ipv4Addr>) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = AddressFamily::Inet;
    msg.header.destination_prefix_length = dst_len;
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    msg.header.protocol = RouteProtocol::Static;
    msg.header.kind = RouteType::Unicast;
    msg.header.scope = if gateway.is_some() {
        RouteScope::Universe
    } else {
        RouteScope::Link
    };
    if dst_len > 0 {
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet(dst)));
    }
    if let Some(gw) = gateway {
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gw)));
    }
    msg.attributes.push(RouteAttribute::Oif(index));
    msg
}

/// An IPv6 route as [`parse_route6`] read it.
pub(super) fn route_v6(r: &Route6Detail) -> RouteMessage {
    use netlink_packet_route::route::{RouteFlags, RoutePreference};
    let mut msg = RouteMessage::default();
    msg.header.address_family = AddressFamily::Inet6;
    msg.header.destination_prefix_length = r.dst_len;
    // Tables above 255 travel in RTA_TABLE only.
    msg.header.table = u8::try_from(r.table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
    msg.header.protocol = RouteProtocol::from(r.protocol);
    msg.header.kind = RouteType::Unicast;
    msg.header.scope = RouteScope::Universe;
    if r.onlink {
        msg.header.flags = RouteFlags::Onlink;
    }
    if r.dst_len > 0 {
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet6(r.dst)));
    }
    if let Some(gw) = r.gateway {
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet6(gw)));
    }
    msg.attributes.push(RouteAttribute::Oif(r.oif));
    msg.attributes.push(RouteAttribute::Table(r.table));
    if let Some(m) = r.metric {
        msg.attributes.push(RouteAttribute::Priority(m));
    }
    if let Some(p) = r.pref {
        msg.attributes
            .push(RouteAttribute::Preference(RoutePreference::from(p)));
    }
    msg
}

/// A link change touching only the fields the caller then sets.
pub(super) fn link_change(index: u32) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_flags_say_when_dad_is_pending_or_failed() {
        use netlink_packet_core::Emitable;
        let detail = |flags| Addr6Detail {
            index: 7,
            addr: "2001:db8::200".parse().unwrap(),
            prefix_len: 64,
            flags,
            valid_lft: INFINITY_LIFE_TIME,
            preferred_lft: INFINITY_LIFE_TIME,
            proto: 0,
            metric: None,
        };
        for (flags, pending) in [
            (IFA_F_TENTATIVE, true),
            (IFA_F_TENTATIVE | IFA_F_OPTIMISTIC, true),
            (IFA_F_DADFAILED | IFA_F_TENTATIVE, true),
            (IFA_F_PERMANENT, false),
            (0, false),
        ] {
            let msg = addr_v6(7, &detail(flags));
            let mut buf = vec![0u8; msg.buffer_len()];
            msg.emit(&mut buf);
            let a = parse_addr(&buf).unwrap().unwrap();
            assert_eq!(a.flags, flags);
            assert_eq!(a.dad_pending_or_failed(), pending, "{flags:#x}");
            assert_eq!(a.addr, IpAddr::from(detail(flags).addr));
        }
    }

    #[test]
    fn qdisc_messages_are_read() {
        // tcmsg: family, pads, ifindex 7, handle 8001:, parent root, info;
        // then TCA_KIND "tbf\0" and an attribute of another kind.
        let mut m = vec![0u8; TCMSG_LEN];
        m[4..8].copy_from_slice(&7i32.to_ne_bytes());
        m[8..12].copy_from_slice(&0x8001_0000u32.to_ne_bytes());
        m[12..16].copy_from_slice(&TC_H_ROOT.to_ne_bytes());
        m.extend_from_slice(&8u16.to_ne_bytes());
        m.extend_from_slice(&TCA_KIND.to_ne_bytes());
        m.extend_from_slice(b"tbf\0");
        m.extend_from_slice(&8u16.to_ne_bytes());
        m.extend_from_slice(&2u16.to_ne_bytes());
        m.extend_from_slice(&[0xaa; 4]);
        let q = parse_qdisc(&m).unwrap().unwrap();
        assert_eq!(
            q,
            QdiscInfo {
                index: 7,
                kind: "tbf".into(),
                parent: TC_H_ROOT,
                handle: 0x8001_0000,
            }
        );
        // No kind: an empty one. A shared block (no interface): nothing.
        assert_eq!(parse_qdisc(&m[..TCMSG_LEN]).unwrap().unwrap().kind, "");
        let mut block = m.clone();
        block[4..8].copy_from_slice(&(-1i32).to_ne_bytes());
        assert_eq!(parse_qdisc(&block).unwrap(), None);
        // An over-long kind is cut; a short header is an error, no panic.
        let mut long = m[..TCMSG_LEN].to_vec();
        long.extend_from_slice(&(4u16 + 40).to_ne_bytes());
        long.extend_from_slice(&TCA_KIND.to_ne_bytes());
        long.extend_from_slice(&[b'x'; 40]);
        assert_eq!(parse_qdisc(&long).unwrap().unwrap().kind.len(), TC_KIND_MAX);
        assert!(parse_qdisc(&m[..TCMSG_LEN - 1]).is_err());
    }

    #[test]
    fn broadcast_computation() {
        let a = Ipv4Addr::new(192, 0, 2, 77);
        assert_eq!(broadcast_v4(a, 24), Some(Ipv4Addr::new(192, 0, 2, 255)));
        assert_eq!(broadcast_v4(a, 0), Some(Ipv4Addr::BROADCAST));
        assert_eq!(broadcast_v4(a, 30), Some(Ipv4Addr::new(192, 0, 2, 79)));
        assert_eq!(broadcast_v4(a, 31), None);
        assert_eq!(broadcast_v4(a, 32), None);
    }

    #[test]
    fn extack_text_is_read() {
        // nlmsgerr after an EINVAL: code, capped echoed header, then
        // NLMSGERR_ATTR_MSG "bad thing\0" padded to 4 bytes.
        let mut payload = (-libc::EINVAL).to_ne_bytes().to_vec();
        payload.extend_from_slice(&[0u8; NLMSGHDR_LEN]);
        payload.extend_from_slice(&14u16.to_ne_bytes());
        payload.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        payload.extend_from_slice(b"bad thing\0\0\0");
        let fault = parse_error_payload(NLM_F_CAPPED | NLM_F_ACK_TLVS, &payload)
            .unwrap()
            .unwrap();
        let Fault::Kernel { errno, ref extack } = fault else {
            panic!("{fault:?}");
        };
        assert_eq!(errno, libc::EINVAL);
        assert_eq!(extack.as_deref(), Some("bad thing"));
        let err = fault.during("doing x");
        assert_eq!(err.errno(), Some(libc::EINVAL));
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().starts_with("doing x: Invalid argument"), "{err}");
        assert!(err.to_string().ends_with("(kernel: bad thing)"), "{err}");

        // Not capped: the whole request comes back (here an 18-byte one,
        // padded to 20) before the TLVs.
        let echoed_len = NLMSGHDR_LEN + 2;
        let mut payload = (-libc::EEXIST).to_ne_bytes().to_vec();
        payload.extend_from_slice(&(echoed_len as u32).to_ne_bytes());
        payload.resize(NLMSGERR_CODE_LEN + nlmsg_align(echoed_len), 0xaa);
        payload.extend_from_slice(&16u16.to_ne_bytes());
        payload.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        payload.extend_from_slice(b"it is there\0");
        let fault = parse_error_payload(NLM_F_ACK_TLVS, &payload).unwrap().unwrap();
        assert!(
            matches!(&fault, Fault::Kernel { errno: libc::EEXIST, extack: Some(t) } if t == "it is there"),
            "{fault:?}"
        );

        // An ack (code 0) is no error.
        let ack = 0i32
            .to_ne_bytes()
            .iter()
            .copied()
            .chain([0u8; NLMSGHDR_LEN])
            .collect::<Vec<_>>();
        assert!(parse_error_payload(NLM_F_CAPPED, &ack).unwrap().is_none());
    }
}
