//! Thin synchronous rtnetlink layer: a blocking request/response [`Handle`]
//! for reading and changing links, addresses and routes, and a non-blocking
//! multicast [`EventSocket`] for link and address notifications.
//!
//! Messages are built with `netlink-packet-route`, but replies are decoded
//! attribute by attribute and only for the attributes we use, so one
//! attribute the crate cannot decode (new kernel, exotic driver) costs that
//! attribute, not the whole link or address.
//!
//! Errors carry context (operation, interface name and index, address); the
//! kernel's errno stays reachable: `io::Error::kind()` is derived from it and
//! [`errno`] digs out the raw value.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, RawFd};

use log::{debug, warn};
use netlink_packet_core::{
    ErrorBuffer, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NlasIterator, Parseable,
    ParseableParametrized, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, NLM_F_ACK, NLM_F_ACK_TLVS,
    NLM_F_CAPPED, NLM_F_CREATE, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressHeader, AddressMessage};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkHeader, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteLwEnCapType, RouteMessage, RouteProtocol, RouteScope,
    RouteType, RouteVia,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr};

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

/// An IPv6 address with what it takes to add it again as it was: the
/// flags an administrator can set, its preferred lifetime (0: deprecated),
/// the IFA_PROTO origin and the prefix route metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr6Detail {
    pub index: u32,
    pub addr: std::net::Ipv6Addr,
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
    pub dst: std::net::Ipv6Addr,
    pub dst_len: u8,
    pub gateway: Option<std::net::Ipv6Addr>,
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

/// Change notification from [`EventSocket::drain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// RTM_NEWLINK: a link appeared or changed.
    Link(LinkInfo),
    /// RTM_DELLINK: a link was deleted (or moved to another namespace).
    LinkGone { index: u32, name: String },
    /// RTM_NEWADDR (IPv4 and IPv6).
    AddrAdded(AddrInfo),
    /// RTM_DELADDR (IPv4 and IPv6).
    AddrRemoved(AddrInfo),
    /// The kernel dropped events (ENOBUFS): the caller must re-read state with Handle.
    Overrun,
}

// Message types and attribute numbers from linux/rtnetlink.h, if_link.h,
// if_addr.h; netlink-packet-route keeps its own copies private.
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_NEWROUTE: u16 = 24;

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

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_TABLE: u16 = 15;
const RTA_VIA: u16 = 18;

const NLMSGERR_ATTR_MSG: u16 = 1;

// Fixed header sizes of ifinfomsg, ifaddrmsg, rtmsg and nlmsghdr.
const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;
const RTMSG_LEN: usize = 12;
const NLMSGHDR_LEN: usize = 16;

// Kernel dump skbs are at most 32 KiB, so 64 KiB never truncates them;
// bigger datagrams are still handled by growing the buffer after a peek.
const RECV_BUF_LEN: usize = 64 * 1024;
const EVENT_RCVBUF: libc::c_int = 4 * 1024 * 1024;
// An interrupted dump (NLM_F_DUMP_INTR) is redone this many times before we
// settle for the possibly inconsistent result.
const DUMP_TRIES: usize = 5;
// Longest interface name the kernel accepts (IFNAMSIZ - 1).
const IFNAME_MAX: usize = 15;

/// An error with a human context ("adding 192.0.2.1/24 to d0 (index 3)")
/// whose source is the original OS error, so the errno stays available.
#[derive(Debug)]
struct ContextError {
    context: String,
    source: io::Error,
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.source)
    }
}

impl std::error::Error for ContextError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn with_context(source: io::Error, context: String) -> io::Error {
    io::Error::new(source.kind(), ContextError { context, source })
}

fn invalid_data(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// The errno behind an error from this module, looking through the
/// context wrappers (which keep `kind()` but not `raw_os_error()`).
pub fn errno(err: &io::Error) -> Option<i32> {
    if let Some(n) = err.raw_os_error() {
        return Some(n);
    }
    let mut cur: &(dyn std::error::Error + 'static) = err.get_ref()?;
    loop {
        if let Some(n) = cur.downcast_ref::<io::Error>().and_then(io::Error::raw_os_error) {
            return Some(n);
        }
        cur = cur.source()?;
    }
}

/// An errno with the kernel's extended-ack explanation.
#[derive(Debug)]
struct ExtAckError {
    source: io::Error,
    msg: String,
}

impl fmt::Display for ExtAckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (kernel: {})", self.source, self.msg)
    }
}

impl std::error::Error for ExtAckError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// A kernel NLMSG_ERROR, with the extended-ack text when the kernel sent one.
#[derive(Debug)]
struct KernelError {
    errno: i32,
    extack: Option<String>,
}

impl KernelError {
    fn into_io(self) -> io::Error {
        let source = io::Error::from_raw_os_error(self.errno);
        match self.extack {
            Some(msg) => io::Error::new(source.kind(), ExtAckError { source, msg }),
            None => source,
        }
    }
}

/// Receives one whole datagram into `buf` (cleared first), growing it when
/// the datagram is larger, so nothing is ever silently truncated.
fn recv_datagram(sock: &Socket, buf: &mut Vec<u8>) -> io::Result<usize> {
    loop {
        buf.clear();
        let peeked = match sock.recv(buf, libc::MSG_PEEK | libc::MSG_TRUNC) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        buf.clear();
        if peeked > buf.capacity() {
            buf.reserve(peeked);
        }
        match sock.recv(buf, 0) {
            Ok(n) => return Ok(n.min(buf.len())),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Splits a datagram into (header, payload) pairs. A malformed length ends
/// the walk with an error: everything after it would be garbage anyway.
fn for_each_message(
    data: &[u8],
    mut f: impl FnMut(&NetlinkHeader, &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut off = 0;
    while off + NLMSGHDR_LEN <= data.len() {
        let nb = NetlinkBuffer::new_checked(&data[off..])
            .map_err(|e| invalid_data(format!("malformed netlink message: {e}")))?;
        let header =
            NetlinkHeader::parse(&nb).map_err(|e| invalid_data(format!("malformed netlink header: {e}")))?;
        f(&header, nb.payload())?;
        // Messages are NLMSG_ALIGNTO (4) aligned inside a datagram.
        off += (header.length as usize + 3) & !3;
    }
    Ok(())
}

fn parse_error_payload(flags: u16, payload: &[u8]) -> io::Result<Option<KernelError>> {
    let eb =
        ErrorBuffer::new_checked(payload).map_err(|e| invalid_data(format!("malformed NLMSG_ERROR: {e}")))?;
    let Some(code) = eb.code() else {
        return Ok(None);
    };
    Ok(Some(KernelError {
        errno: code.get().saturating_neg(),
        extack: extack_message(flags, &payload[4..]),
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
        let len = u32::from_ne_bytes(rest[0..4].try_into().ok()?) as usize;
        (len + 3) & !3
    };
    extack_text(rest.get(echoed..)?)
}

fn extack_text(tlvs: &[u8]) -> Option<String> {
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
fn parse_link(payload: &[u8]) -> Result<Option<LinkInfo>, String> {
    let header = LinkHeader::parse(payload).map_err(|e| e.to_string())?;
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
        let nla = nla.map_err(|e| e.to_string())?;
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
        return Err(format!("link {} without IFLA_IFNAME", header.index));
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
fn parse_addr(payload: &[u8]) -> Result<Option<AddrInfo>, String> {
    let header = AddressHeader::parse(payload).map_err(|e| e.to_string())?;
    if !matches!(header.family, AddressFamily::Inet | AddressFamily::Inet6) {
        return Ok(None);
    }
    let mut local = None;
    let mut address = None;
    for nla in NlasIterator::new(&payload[IFADDRMSG_LEN..]) {
        let nla = nla.map_err(|e| e.to_string())?;
        if !matches!(nla.kind(), IFA_ADDRESS | IFA_LOCAL) {
            continue;
        }
        match AddressAttribute::parse(&nla) {
            Ok(AddressAttribute::Local(a)) => local = Some(a),
            Ok(AddressAttribute::Address(a)) => address = Some(a),
            Ok(_) => {}
            Err(e) => debug!("address on {}: skipping attribute: {e}", header.index),
        }
    }
    // IFA_LOCAL is our own address; IFA_ADDRESS is the peer on
    // point-to-point links and equal to IFA_LOCAL otherwise (same rule as
    // getifaddrs and iproute2).
    let addr = local
        .or(address)
        .ok_or_else(|| format!("address on {} without IFA_LOCAL/IFA_ADDRESS", header.index))?;
    Ok(Some(AddrInfo {
        index: header.index,
        addr,
        prefix_len: header.prefix_len,
    }))
}

/// Decodes an RTM_NEWADDR payload into an [`Addr6Detail`]; `Ok(None)`
/// for other families.
fn parse_addr6(payload: &[u8]) -> Result<Option<Addr6Detail>, String> {
    let header = AddressHeader::parse(payload).map_err(|e| e.to_string())?;
    if header.family != AddressFamily::Inet6 {
        return Ok(None);
    }
    let mut d = Addr6Detail {
        index: header.index,
        addr: std::net::Ipv6Addr::UNSPECIFIED,
        prefix_len: header.prefix_len,
        flags: u32::from(header.flags.bits()),
        valid_lft: INFINITY_LIFE_TIME,
        preferred_lft: INFINITY_LIFE_TIME,
        proto: 0,
        metric: None,
    };
    let mut found = None;
    for nla in NlasIterator::new(&payload[IFADDRMSG_LEN..]) {
        let nla = nla.map_err(|e| e.to_string())?;
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
    d.addr = found.ok_or_else(|| format!("IPv6 address on {} without IFA_ADDRESS", header.index))?;
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
fn parse_route(payload: &[u8]) -> Result<Option<RouteInfo>, String> {
    let header = RouteHeader::parse(payload).map_err(|e| e.to_string())?;
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
        let nla = nla.map_err(|e| e.to_string())?;
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
fn parse_route6(payload: &[u8]) -> Result<Option<Route6Detail>, String> {
    use netlink_packet_route::route::RouteFlags;
    let header = RouteHeader::parse(payload).map_err(|e| e.to_string())?;
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
        dst: std::net::Ipv6Addr::UNSPECIFIED,
        dst_len: header.destination_prefix_length,
        gateway: None,
        oif: 0,
        metric: None,
        onlink: header.flags.contains(RouteFlags::Onlink),
        pref: None,
    };
    for nla in NlasIterator::new(&payload[RTMSG_LEN..]) {
        let nla = nla.map_err(|e| e.to_string())?;
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

fn broadcast_v4(addr: Ipv4Addr, prefix_len: u8) -> Option<Ipv4Addr> {
    // /31 (RFC 3021) and /32 have no broadcast address.
    if prefix_len >= 31 {
        return None;
    }
    let host_mask = u32::MAX >> prefix_len;
    Some(Ipv4Addr::from(u32::from(addr) | host_mask))
}

fn fmt_mac(mac: &[u8; 6]) -> String {
    let parts: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}

/// Request/response socket (NETLINK_ROUTE), blocking.
pub struct Handle {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Handle {
    pub fn new() -> io::Result<Handle> {
        let mut sock =
            Socket::new(NETLINK_ROUTE).map_err(|e| with_context(e, "opening rtnetlink socket".into()))?;
        sock.bind_auto()
            .map_err(|e| with_context(e, "binding rtnetlink socket".into()))?;
        // Connecting makes the kernel refuse unicasts from other processes.
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| with_context(e, "connecting rtnetlink socket".into()))?;
        // Best effort: extended acks give readable error text, capped acks
        // keep error replies small. Old kernels lack them; that is fine.
        if let Err(e) = sock.set_ext_ack(true) {
            debug!("NETLINK_EXT_ACK unavailable: {e}");
        }
        if let Err(e) = sock.set_cap_ack(true) {
            debug!("NETLINK_CAP_ACK unavailable: {e}");
        }
        Ok(Handle {
            sock,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF_LEN),
        })
    }

    /// Sends `msg` and feeds every reply message for it to `on_msg` until
    /// the request is finished: NLMSG_DONE for dumps, the ack otherwise.
    /// Returns whether a dump was interrupted (NLM_F_DUMP_INTR).
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        mut on_msg: impl FnMut(u16, &[u8]),
    ) -> Result<bool, io::Error> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut out = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut out);
        loop {
            match self.sock.send(&out, 0) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }

        let mut interrupted = false;
        let mut finished: Option<Result<(), KernelError>> = None;
        let mut buf = std::mem::take(&mut self.buf);
        let result = loop {
            let n = match recv_datagram(&self.sock, &mut buf) {
                Ok(n) => n,
                Err(e) => break Err(e),
            };
            let walked = for_each_message(&buf[..n], |h, payload| {
                if h.sequence_number != seq {
                    // Leftovers of an earlier request that was abandoned.
                    debug!("dropping netlink message with stale seq {}", h.sequence_number);
                    return Ok(());
                }
                if finished.is_some() {
                    return Ok(());
                }
                if h.flags & NLM_F_DUMP_INTR != 0 {
                    interrupted = true;
                }
                match h.message_type {
                    NLMSG_NOOP => {}
                    NLMSG_ERROR => {
                        finished = Some(match parse_error_payload(h.flags, payload)? {
                            None => Ok(()),
                            Some(ke) => Err(ke),
                        });
                    }
                    NLMSG_DONE => {
                        // The payload is an int: 0, or a negative errno if
                        // the dump failed part way.
                        let code = payload
                            .get(..4)
                            .and_then(|b| b.try_into().ok())
                            .map(i32::from_ne_bytes)
                            .unwrap_or(0);
                        finished = Some(if code < 0 {
                            Err(KernelError {
                                errno: code.saturating_neg(),
                                // DONE carries its TLVs right after the code.
                                extack: (h.flags & NLM_F_ACK_TLVS != 0)
                                    .then(|| extack_text(payload.get(4..).unwrap_or(&[])))
                                    .flatten(),
                            })
                        } else {
                            Ok(())
                        });
                    }
                    NLMSG_OVERRUN => {
                        return Err(invalid_data("netlink reported data overrun".into()));
                    }
                    // Non-dump requests always ask for an ack, so their
                    // lone reply needs no NLM_F_MULTI bookkeeping.
                    t => on_msg(t, payload),
                }
                Ok(())
            });
            if let Err(e) = walked {
                break Err(e);
            }
            match finished.take() {
                Some(Ok(())) => break Ok(interrupted),
                Some(Err(ke)) => break Err(ke.into_io()),
                None => {}
            }
        };
        self.buf = buf;
        result
    }

    /// Runs a dump, redoing it when the kernel flags it as interrupted by a
    /// concurrent change.
    fn dump<T>(
        &mut self,
        what: &str,
        msg: RouteNetlinkMessage,
        msg_type: u16,
        parse: impl Fn(&[u8]) -> Result<Option<T>, String>,
    ) -> io::Result<Vec<T>> {
        let mut items = Vec::new();
        for attempt in 1..=DUMP_TRIES {
            items.clear();
            let interrupted = self
                .request(msg.clone(), NLM_F_DUMP, |t, payload| {
                    if t != msg_type {
                        return;
                    }
                    match parse(payload) {
                        Ok(Some(item)) => items.push(item),
                        Ok(None) => {}
                        // Loud: a dump missing an entry means an incomplete view.
                        Err(e) => warn!("{what}: skipping unparseable message: {e}"),
                    }
                })
                .map_err(|e| with_context(e, format!("dumping {what}")))?;
            if !interrupted {
                break;
            }
            if attempt == DUMP_TRIES {
                warn!("{what} dump still inconsistent after {DUMP_TRIES} tries; using it");
            }
        }
        Ok(items)
    }

    /// "d0 (index 3)" for error messages; just "index 3" if the name can't
    /// be had. Only called on error paths, so the extra request is fine.
    fn describe(&mut self, index: u32) -> String {
        match self.link_by_index(index) {
            Ok(Some(l)) => format!("{} (index {index})", l.name),
            _ => format!("index {index}"),
        }
    }

    /// Runs a change request that wants only an ack; on failure names the
    /// operation `what(link description)`.
    fn change(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        index: u32,
        what: impl FnOnce(&str) -> String,
    ) -> io::Result<()> {
        match self.request(msg, flags | NLM_F_ACK, |_, _| {}) {
            Ok(_) => Ok(()),
            Err(e) => {
                let link = self.describe(index);
                Err(with_context(e, what(&link)))
            }
        }
    }

    /// RTM_GETLINK dump.
    pub fn links(&mut self) -> io::Result<Vec<LinkInfo>> {
        let msg = RouteNetlinkMessage::GetLink(LinkMessage::default());
        self.dump("links", msg, RTM_NEWLINK, parse_link)
    }

    /// `Ok(None)` when no such link exists.
    pub fn link_by_name(&mut self, name: &str) -> io::Result<Option<LinkInfo>> {
        if name.is_empty() || name.len() > IFNAME_MAX || name.contains('\0') {
            // Cannot be an interface name, so it cannot exist.
            return Ok(None);
        }
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.get_link(msg)
            .map_err(|e| with_context(e, format!("looking up link {name}")))
    }

    /// `Ok(None)` when no such link exists.
    pub fn link_by_index(&mut self, index: u32) -> io::Result<Option<LinkInfo>> {
        if index == 0 || index > i32::MAX as u32 {
            return Ok(None);
        }
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.get_link(msg)
            .map_err(|e| with_context(e, format!("looking up link index {index}")))
    }

    fn get_link(&mut self, msg: LinkMessage) -> io::Result<Option<LinkInfo>> {
        let mut found = None;
        let mut bad = None;
        let res = self.request(RouteNetlinkMessage::GetLink(msg), NLM_F_ACK, |t, payload| {
            if t != RTM_NEWLINK {
                return;
            }
            match parse_link(payload) {
                Ok(Some(l)) => found = Some(l),
                Ok(None) => {}
                Err(e) => bad = Some(e),
            }
        });
        match res {
            Ok(_) => match (found, bad) {
                (Some(l), _) => Ok(Some(l)),
                (None, Some(e)) => Err(invalid_data(format!("unparseable link reply: {e}"))),
                (None, None) => Err(invalid_data("no link in reply".into())),
            },
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// IPv4 and IPv6 addresses of all links.
    pub fn addresses(&mut self) -> io::Result<Vec<AddrInfo>> {
        let msg = RouteNetlinkMessage::GetAddress(AddressMessage::default());
        self.dump("addresses", msg, RTM_NEWADDR, parse_addr)
    }

    /// IPv6 addresses of all links, with flags and lifetimes.
    pub fn ipv6_address_details(&mut self) -> io::Result<Vec<Addr6Detail>> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet6;
        self.dump(
            "IPv6 addresses",
            RouteNetlinkMessage::GetAddress(msg),
            RTM_NEWADDR,
            parse_addr6,
        )
    }

    /// Adds an IPv6 address with its flags, preferred lifetime, origin and
    /// metric (as [`Handle::ipv6_address_details`] read them); an address
    /// already there is left alone (`Ok`).
    pub fn add_address_v6(&mut self, index: u32, a: &Addr6Detail) -> io::Result<()> {
        use netlink_packet_route::address::{AddressFlags, AddressProtocol, CacheInfo};
        Self::check_prefix(a.prefix_len, 128, &format!("adding {}/{}", a.addr, a.prefix_len))?;
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
        let (addr, len) = (a.addr, a.prefix_len);
        match self.change(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            index,
            |link| format!("adding {addr}/{len} to {link}"),
        ) {
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }

    /// Single-path unicast IPv6 routes of all tables.
    pub fn ipv6_route_details(&mut self) -> io::Result<Vec<Route6Detail>> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet6;
        msg.header.table = RouteHeader::RT_TABLE_UNSPEC;
        self.dump(
            "IPv6 routes",
            RouteNetlinkMessage::GetRoute(msg),
            RTM_NEWROUTE,
            parse_route6,
        )
    }

    /// Adds an IPv6 route as [`Handle::ipv6_route_details`] read it; one
    /// already there is left alone (`Ok`).
    pub fn add_route_v6(&mut self, r: &Route6Detail) -> io::Result<()> {
        use netlink_packet_route::route::{RouteFlags, RoutePreference};
        Self::check_prefix(r.dst_len, 128, &format!("adding route {}/{}", r.dst, r.dst_len))?;
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
        let (dst, len, oif) = (r.dst, r.dst_len, r.oif);
        match self.change(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            oif,
            |link| format!("adding route {dst}/{len} dev {link}"),
        ) {
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }

    /// IPv4 and IPv6 routes of all tables.
    pub fn routes(&mut self) -> io::Result<Vec<RouteInfo>> {
        let mut msg = RouteMessage::default();
        // RT_TABLE_UNSPEC asks for every table, not just main.
        msg.header.table = RouteHeader::RT_TABLE_UNSPEC;
        self.dump(
            "routes",
            RouteNetlinkMessage::GetRoute(msg),
            RTM_NEWROUTE,
            parse_route,
        )
    }

    fn addr_msg(index: u32, addr: Ipv4Addr, prefix_len: u8) -> AddressMessage {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = prefix_len;
        msg.header.index = index;
        msg.attributes.push(AddressAttribute::Local(addr.into()));
        msg.attributes.push(AddressAttribute::Address(addr.into()));
        msg
    }

    fn check_prefix(prefix_len: u8, max: u8, what: &str) -> io::Result<()> {
        if prefix_len > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{what}: prefix length {prefix_len} is longer than {max}"),
            ));
        }
        Ok(())
    }

    /// Adds `addr/prefix_len` (with the computed broadcast) to link `index`;
    /// fails with EEXIST if it is already there.
    pub fn add_address(&mut self, index: u32, addr: Ipv4Addr, prefix_len: u8) -> io::Result<()> {
        Self::check_prefix(prefix_len, 32, &format!("adding {addr}/{prefix_len}"))?;
        let mut msg = Self::addr_msg(index, addr, prefix_len);
        if let Some(brd) = broadcast_v4(addr, prefix_len) {
            msg.attributes.push(AddressAttribute::Broadcast(brd));
        }
        self.change(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            index,
            |link| format!("adding {addr}/{prefix_len} to {link}"),
        )
    }

    pub fn del_address(&mut self, index: u32, addr: Ipv4Addr, prefix_len: u8) -> io::Result<()> {
        Self::check_prefix(prefix_len, 32, &format!("removing {addr}/{prefix_len}"))?;
        let msg = Self::addr_msg(index, addr, prefix_len);
        self.change(RouteNetlinkMessage::DelAddress(msg), 0, index, |link| {
            format!("removing {addr}/{prefix_len} from {link}")
        })
    }

    /// Sets or clears IFF_UP, leaving every other flag alone.
    pub fn set_up(&mut self, index: u32, up: bool) -> io::Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = if up { LinkFlags::Up } else { LinkFlags::empty() };
        // Only the bits in the change mask are applied.
        msg.header.change_mask = LinkFlags::Up;
        let state = if up { "up" } else { "down" };
        self.change(RouteNetlinkMessage::SetLink(msg), 0, index, |link| {
            format!("setting {link} {state}")
        })
    }

    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> io::Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        self.change(RouteNetlinkMessage::SetLink(msg), 0, index, |link| {
            format!("setting mtu {mtu} on {link}")
        })
    }

    pub fn set_mac(&mut self, index: u32, mac: [u8; 6]) -> io::Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        self.change(RouteNetlinkMessage::SetLink(msg), 0, index, |link| {
            format!("setting mac {} on {link}", fmt_mac(&mac))
        })
    }

    /// A unicast route in the main table with RTPROT_STATIC; link scope when
    /// there is no gateway (directly connected).
    fn route_v4(index: u32, dst: Ipv4Addr, dst_len: u8, gateway: Option<Ipv4Addr>) -> RouteMessage {
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

    pub fn add_route_v4(
        &mut self,
        index: u32,
        dst: Ipv4Addr,
        dst_len: u8,
        gateway: Option<Ipv4Addr>,
    ) -> io::Result<()> {
        Self::check_prefix(dst_len, 32, &format!("adding route {dst}/{dst_len}"))?;
        let via = gateway.map(|gw| format!(" via {gw}")).unwrap_or_default();
        self.change(
            RouteNetlinkMessage::NewRoute(Self::route_v4(index, dst, dst_len, gateway)),
            NLM_F_CREATE | NLM_F_EXCL,
            index,
            |link| format!("adding route {dst}/{dst_len}{via} dev {link}"),
        )
    }

    pub fn del_route_v4(
        &mut self,
        index: u32,
        dst: Ipv4Addr,
        dst_len: u8,
        gateway: Option<Ipv4Addr>,
    ) -> io::Result<()> {
        Self::check_prefix(dst_len, 32, &format!("removing route {dst}/{dst_len}"))?;
        let via = gateway.map(|gw| format!(" via {gw}")).unwrap_or_default();
        self.change(
            RouteNetlinkMessage::DelRoute(Self::route_v4(index, dst, dst_len, gateway)),
            0,
            index,
            |link| format!("removing route {dst}/{dst_len}{via} dev {link}"),
        )
    }
}

/// Non-blocking multicast listener subscribed to RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR and RTNLGRP_IPV6_IFADDR.
pub struct EventSocket {
    sock: Socket,
    buf: Vec<u8>,
}

impl EventSocket {
    pub fn new() -> io::Result<EventSocket> {
        fn ctx(what: &str) -> impl FnOnce(io::Error) -> io::Error + '_ {
            move |e| with_context(e, format!("event socket: {what}"))
        }
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(ctx("opening"))?;
        sock.bind_auto().map_err(ctx("binding"))?;
        // Refuse unicasts from other processes; multicast is unaffected.
        sock.connect(&SocketAddr::new(0, 0)).map_err(ctx("connecting"))?;
        for group in [
            libc::RTNLGRP_LINK,
            libc::RTNLGRP_IPV4_IFADDR,
            libc::RTNLGRP_IPV6_IFADDR,
        ] {
            sock.add_membership(group)
                .map_err(ctx(&format!("joining group {group}")))?;
        }
        sock.set_non_blocking(true).map_err(ctx("setting O_NONBLOCK"))?;
        set_big_rcvbuf(&sock);
        Ok(EventSocket {
            sock,
            buf: Vec::with_capacity(RECV_BUF_LEN),
        })
    }

    /// Reads every pending message until EAGAIN and appends the parsed events to `out`; never blocks.
    /// ENOBUFS is reported as Event::Overrun (not an error). Unparseable messages are skipped with log::debug!.
    pub fn drain(&mut self, out: &mut Vec<Event>) -> io::Result<()> {
        loop {
            let n = match recv_datagram(&self.sock, &mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if errno(&e) == Some(libc::ENOBUFS) => {
                    // The socket stays usable; what is still queued is newer
                    // than the loss, so keep reading after the marker.
                    if out.last() != Some(&Event::Overrun) {
                        out.push(Event::Overrun);
                    }
                    continue;
                }
                Err(e) => return Err(with_context(e, "reading netlink events".into())),
            };
            let walked = for_each_message(&self.buf[..n], |h, payload| {
                if let Some(ev) = parse_event(h.message_type, payload) {
                    out.push(ev);
                }
                Ok(())
            });
            if let Err(e) = walked {
                debug!("skipping rest of malformed event datagram: {e}");
            }
        }
    }
}

fn parse_event(msg_type: u16, payload: &[u8]) -> Option<Event> {
    let parsed = match msg_type {
        RTM_NEWLINK => parse_link(payload).map(|l| l.map(Event::Link)),
        RTM_DELLINK => parse_link(payload).map(|l| {
            l.map(|l| Event::LinkGone {
                index: l.index,
                name: l.name,
            })
        }),
        RTM_NEWADDR => parse_addr(payload).map(|a| a.map(Event::AddrAdded)),
        RTM_DELADDR => parse_addr(payload).map(|a| a.map(Event::AddrRemoved)),
        _ => Ok(None),
    };
    parsed.unwrap_or_else(|e| {
        debug!("skipping unparseable netlink event (type {msg_type}): {e}");
        None
    })
}

/// A burst of link changes (many VLANs, a flapping bond) overflows the
/// default ~200 KiB quickly. SO_RCVBUFFORCE ignores rmem_max but needs
/// CAP_NET_ADMIN; without it SO_RCVBUF gets as much as rmem_max allows.
fn set_big_rcvbuf(sock: &Socket) {
    let size: libc::c_int = EVENT_RCVBUF;
    // SAFETY: the fd is a valid open socket owned by `sock`; the option
    // value points to a live c_int and the length passed is its size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        return;
    }
    debug!(
        "SO_RCVBUFFORCE failed ({}), falling back to SO_RCVBUF",
        io::Error::last_os_error()
    );
    if let Err(e) = sock.set_rx_buf_sz(size) {
        warn!("cannot enlarge netlink event buffer: {e}");
    }
}

// Manual Debug: the receive buffers would print kilobytes of bytes.
impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("fd", &self.sock.as_raw_fd())
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for EventSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSocket")
            .field("fd", &self.sock.as_raw_fd())
            .finish_non_exhaustive()
    }
}

impl AsRawFd for EventSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;
    use std::process::{Command, Output, Stdio};
    use std::sync::mpsc;
    use std::thread;
    use std::time::{Duration, Instant};

    /// Runs `f` on a thread that lives in a fresh, empty network namespace,
    /// so nothing here can touch the host's interfaces.
    fn in_netns<F: FnOnce() + Send + 'static>(f: F) {
        thread::spawn(move || {
            unshare_net();
            f();
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
    }

    fn unshare_net() {
        // SAFETY: plain syscall without pointers; CLONE_NEWNET only moves
        // the calling thread (and children it spawns) to a new namespace.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "unshare: {}", io::Error::last_os_error());
    }

    fn try_ip(args: &[&str]) -> Output {
        Command::new("ip").args(args).output().expect("running ip")
    }

    /// Runs `ip` in the calling thread's namespace (children inherit it).
    fn ip(args: &[&str]) -> String {
        let out = try_ip(args);
        assert!(
            out.status.success(),
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn ip_batch(cmds: &str) {
        use std::io::Write;
        let mut child = Command::new("ip")
            .args(["-batch", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("running ip -batch");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(cmds.as_bytes()).unwrap();
        drop(stdin);
        assert!(child.wait().unwrap().success());
    }

    /// Creates an Ethernet-like test link and returns its kind: a dummy
    /// where the kernel has them (this VM's does not), else one end of a
    /// veth pair whose peer is `{name}p`.
    fn add_plain(name: &str) -> &'static str {
        if try_ip(&["link", "add", name, "type", "dummy"]).status.success() {
            return "dummy";
        }
        let peer = format!("{name}p");
        ip(&["link", "add", name, "type", "veth", "peer", "name", &peer]);
        "veth"
    }

    fn link(h: &mut Handle, name: &str) -> LinkInfo {
        h.link_by_name(name).unwrap().expect(name)
    }

    /// Polls `cond` for up to 5 s; the changes tested are normally
    /// synchronous, the margin is for slow machines.
    fn eventually(mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if cond() {
                return true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        cond()
    }

    fn wait_event(es: &mut EventSocket, seen: &mut Vec<Event>, pred: impl Fn(&Event) -> bool) {
        let found = eventually(|| {
            es.drain(seen).unwrap();
            seen.iter().any(&pred)
        });
        assert!(found, "expected event not seen; got {seen:#?}");
    }

    #[test]
    fn links_and_carrier() {
        in_netns(|| {
            let mut h = Handle::new().unwrap();
            let kind = add_plain("d0");
            ip(&["link", "add", "va", "type", "veth", "peer", "name", "vb"]);

            let links = h.links().unwrap();
            let by = |n: &str| links.iter().find(|l| l.name == n).cloned().unwrap();
            let lo = by("lo");
            assert_eq!((lo.index, lo.kind.clone()), (1, None));
            assert_eq!(lo.mac, Some([0; 6]));
            assert_eq!(lo.mtu, 65536);
            let d0 = by("d0");
            assert_eq!(d0.kind.as_deref(), Some(kind));
            assert_eq!(d0.mtu, 1500);
            assert!(d0.mac.is_some_and(|m| m != [0; 6]));
            assert!(!d0.up && !d0.lower_up);
            assert_eq!(d0.master, None);
            let (va, vb) = (by("va"), by("vb"));
            assert_eq!(va.kind.as_deref(), Some("veth"));
            // A veth's IFLA_LINK is its peer when both are in this namespace.
            assert_eq!(va.link, Some(vb.index));
            assert_eq!(vb.link, Some(va.index));

            assert_eq!(h.link_by_name("d0").unwrap(), Some(d0.clone()));
            assert_eq!(h.link_by_index(d0.index).unwrap(), Some(d0.clone()));
            assert_eq!(h.link_by_name("nosuch0").unwrap(), None);
            assert_eq!(h.link_by_name("").unwrap(), None);
            assert_eq!(h.link_by_name("much-too-long-for-ifnamsiz").unwrap(), None);
            assert_eq!(h.link_by_index(999_999).unwrap(), None);

            h.set_up(va.index, true).unwrap();
            let va_now = link(&mut h, "va");
            assert!(va_now.up && !va_now.lower_up, "peer still down");
            h.set_up(vb.index, true).unwrap();
            assert!(eventually(|| link(&mut h, "va").lower_up));
            assert!(eventually(|| link(&mut h, "vb").lower_up));
            let shown = ip(&["link", "show", "va"]);
            assert!(shown.contains("LOWER_UP"), "{shown}");

            h.set_up(vb.index, false).unwrap();
            let vb = link(&mut h, "vb");
            assert!(!vb.up && !vb.lower_up);
            assert!(eventually(|| !link(&mut h, "va").lower_up));
            assert!(link(&mut h, "va").up);
        });
    }

    #[test]
    fn peer_in_other_namespace_has_no_link() {
        // A second namespace, kept alive by a parked thread.
        let (tx, rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let other = thread::spawn(move || {
            unshare_net();
            // SAFETY: gettid has no arguments and cannot fail.
            let tid = unsafe { libc::gettid() };
            tx.send(tid).unwrap();
            let _ = stop_rx.recv();
        });
        let tid = rx.recv().unwrap();
        in_netns(move || {
            let mut h = Handle::new().unwrap();
            ip(&["link", "add", "va", "type", "veth", "peer", "name", "vb"]);
            let ns = format!("/proc/{}/task/{tid}/ns/net", std::process::id());
            ip(&["link", "set", "vb", "netns", &ns]);
            let va = link(&mut h, "va");
            assert_eq!(va.kind.as_deref(), Some("veth"));
            assert_eq!(va.link, None, "peer index belongs to another namespace");
            assert_eq!(h.link_by_name("vb").unwrap(), None);
        });
        stop_tx.send(()).unwrap();
        other.join().unwrap();
    }

    #[test]
    fn set_mtu_and_mac() {
        in_netns(|| {
            let mut h = Handle::new().unwrap();
            add_plain("d0");
            let idx = link(&mut h, "d0").index;
            let mac = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];
            h.set_mtu(idx, 9000).unwrap();
            h.set_mac(idx, mac).unwrap();
            let d0 = link(&mut h, "d0");
            assert_eq!((d0.mtu, d0.mac), (9000, Some(mac)));
            let shown = ip(&["link", "show", "d0"]);
            assert!(shown.contains("mtu 9000"), "{shown}");
            assert!(shown.contains("02:00:5e:10:00:01"), "{shown}");

            // Failures name the operation and the link and keep the errno.
            let err = h.set_mtu(idx, 10).unwrap_err();
            assert_eq!(errno(&err), Some(libc::EINVAL), "{err}");
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!("setting mtu 10 on d0 (index {idx}): ")),
                "{msg}"
            );
            let err = h.set_mac(idx, [0x01, 0, 0, 0, 0, 1]).unwrap_err();
            assert!(
                err.to_string().contains("setting mac 01:00:00:00:00:01 on d0"),
                "{err}"
            );
            let err = h.set_up(999_999, true).unwrap_err();
            assert_eq!(errno(&err), Some(libc::ENODEV), "{err}");
            assert!(err.to_string().starts_with("setting index 999999 up: "), "{err}");
        });
    }

    #[test]
    fn address_round_trip() {
        in_netns(|| {
            let mut h = Handle::new().unwrap();
            add_plain("d0");
            let idx = link(&mut h, "d0").index;
            let a = Ipv4Addr::new(192, 0, 2, 200);
            let want = AddrInfo {
                index: idx,
                addr: a.into(),
                prefix_len: 24,
            };
            h.add_address(idx, a, 24).unwrap();
            assert!(h.addresses().unwrap().contains(&want));
            let shown = ip(&["-o", "-4", "addr", "show", "dev", "d0"]);
            assert!(shown.contains("192.0.2.200/24 brd 192.0.2.255"), "{shown}");

            // No broadcast on /31 and /32.
            let host = Ipv4Addr::new(203, 0, 113, 9);
            h.add_address(idx, host, 32).unwrap();
            let shown = ip(&["-o", "-4", "addr", "show", "dev", "d0"]);
            assert!(shown.contains("203.0.113.9/32 scope"), "{shown}");

            let err = h.add_address(idx, a, 24).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
            assert_eq!(errno(&err), Some(libc::EEXIST));
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!("adding 192.0.2.200/24 to d0 (index {idx}): File exists")),
                "{msg}"
            );

            h.del_address(idx, a, 24).unwrap();
            h.del_address(idx, host, 32).unwrap();
            let addrs = h.addresses().unwrap();
            assert!(
                !addrs.iter().any(|x| x.index == idx && x.addr.is_ipv4()),
                "{addrs:?}"
            );
            let err = h.del_address(idx, a, 24).unwrap_err();
            assert_eq!(errno(&err), Some(libc::EADDRNOTAVAIL));
            assert!(
                err.to_string().starts_with("removing 192.0.2.200/24 from d0"),
                "{err}"
            );
            let err = h.add_address(idx, a, 33).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);

            // IPv6 comes through the same dump.
            h.set_up(1, true).unwrap();
            let all = h.addresses().unwrap();
            for (addr, prefix_len) in [
                (IpAddr::from(Ipv6Addr::LOCALHOST), 128),
                (Ipv4Addr::LOCALHOST.into(), 8),
            ] {
                let lo = AddrInfo {
                    index: 1,
                    addr,
                    prefix_len,
                };
                assert!(all.contains(&lo), "{lo:?} not in {all:?}");
            }
        });
    }

    #[test]
    fn lower_link_and_bridge_master() {
        in_netns(|| {
            let mut h = Handle::new().unwrap();
            add_plain("d0");
            let d0 = link(&mut h, "d0");

            // Stacked links point at their lower device. This VM's kernel
            // has no 8021q, so VLAN is checked where available and macvlan
            // (same IFLA_LINK semantics) always.
            ip(&["link", "add", "link", "d0", "name", "mv0", "type", "macvlan"]);
            let mv = link(&mut h, "mv0");
            assert_eq!(mv.kind.as_deref(), Some("macvlan"));
            assert_eq!(mv.link, Some(d0.index));
            let vlan = [
                "link", "add", "link", "d0", "name", "d0.10", "type", "vlan", "id", "10",
            ];
            if try_ip(&vlan).status.success() {
                let v = link(&mut h, "d0.10");
                assert_eq!(v.kind.as_deref(), Some("vlan"));
                assert_eq!(v.link, Some(d0.index));
                assert_eq!(v.mac, d0.mac);
            } else {
                eprintln!("kernel without 8021q: VLAN case skipped, macvlan checked");
            }

            ip(&["link", "add", "br0", "type", "bridge"]);
            let br0 = link(&mut h, "br0");
            assert_eq!(br0.kind.as_deref(), Some("bridge"));
            ip(&["link", "del", "mv0"]);
            let mut es = EventSocket::new().unwrap();
            ip(&["link", "set", "d0", "master", "br0"]);
            assert_eq!(link(&mut h, "d0").master, Some(br0.index));
            let links = h.links().unwrap();
            assert!(links
                .iter()
                .any(|l| l.name == "d0" && l.master == Some(br0.index)));
            // The bridge's own AF_BRIDGE copies must not show up as links.
            assert_eq!(links.iter().filter(|l| l.name == "d0").count(), 1);

            // Leaving the bridge makes the bridge send an AF_BRIDGE
            // RTM_DELLINK for the port; that is not a deletion.
            ip(&["link", "set", "d0", "nomaster"]);
            let mut seen = Vec::new();
            wait_event(
                &mut es,
                &mut seen,
                |e| matches!(e, Event::Link(l) if l.index == d0.index && l.master.is_none()),
            );
            assert!(seen
                .iter()
                .any(|e| matches!(e, Event::Link(l) if l.master == Some(br0.index))));
            thread::sleep(Duration::from_millis(50));
            es.drain(&mut seen).unwrap();
            let gone = seen.iter().any(|e| matches!(e, Event::LinkGone { .. }));
            assert!(!gone, "{seen:#?}");
            assert_eq!(link(&mut h, "d0").master, None);
        });
    }

    #[test]
    fn events() {
        in_netns(|| {
            let mut h = Handle::new().unwrap();
            let mut es = EventSocket::new().unwrap();
            let mut seen = Vec::new();
            let t = Instant::now();
            es.drain(&mut seen).unwrap();
            assert!(t.elapsed() < Duration::from_secs(1), "drain blocked");
            assert!(seen.is_empty(), "{seen:?}");

            ip(&["link", "add", "va", "type", "veth", "peer", "name", "vb"]);
            wait_event(
                &mut es,
                &mut seen,
                |e| matches!(e, Event::Link(l) if l.name == "va"),
            );
            let (va, vb) = (link(&mut h, "va").index, link(&mut h, "vb").index);

            h.set_up(va, true).unwrap();
            h.set_up(vb, true).unwrap();
            wait_event(
                &mut es,
                &mut seen,
                |e| matches!(e, Event::Link(l) if l.index == va && l.up && l.lower_up),
            );
            // Carrier brings the IPv6 link-local address.
            wait_event(
                &mut es,
                &mut seen,
                |e| matches!(e, Event::AddrAdded(a) if a.index == va && a.addr.is_ipv6()),
            );

            seen.clear();
            h.set_up(vb, false).unwrap();
            wait_event(
                &mut es,
                &mut seen,
                |e| matches!(e, Event::Link(l) if l.index == va && l.up && !l.lower_up),
            );

            let a = Ipv4Addr::new(198, 51, 100, 1);
            let info = AddrInfo {
                index: va,
                addr: a.into(),
                prefix_len: 24,
            };
            h.add_address(va, a, 24).unwrap();
            wait_event(&mut es, &mut seen, |e| *e == Event::AddrAdded(info.clone()));
            h.del_address(va, a, 24).unwrap();
            wait_event(&mut es, &mut seen, |e| *e == Event::AddrRemoved(info.clone()));

            ip(&["link", "del", "va"]);
            for (index, name) in [(va, "va"), (vb, "vb")] {
                let gone = Event::LinkGone {
                    index,
                    name: name.into(),
                };
                wait_event(&mut es, &mut seen, |e| *e == gone);
            }
            assert!(!seen.contains(&Event::Overrun));
        });
    }

    #[test]
    fn overrun_and_big_dumps() {
        in_netns(|| {
            let mut h = Handle::new().unwrap();
            let mut cmds = String::new();
            for i in 0..300 {
                cmds.push_str(&format!("link add d{i} type veth peer name p{i}\n"));
            }
            ip_batch(&cmds);
            // ~600 links of over 1 KiB each: many NLM_F_MULTI datagrams.
            let links = h.links().unwrap();
            assert_eq!(links.len(), 601, "lo + 300 veth pairs");
            let d0 = links.iter().find(|l| l.name == "d0").unwrap().index;

            let mut es = EventSocket::new().unwrap();
            // Shrink the queue to the kernel minimum so the burst overflows.
            es.sock.set_rx_buf_sz(0).unwrap();
            let n = 1000;
            for i in 0..n {
                let a = Ipv4Addr::new(198, 51, 100 + (i / 250) as u8, (i % 250) as u8 + 1);
                h.add_address(d0, a, 22).unwrap();
            }
            let mut seen = Vec::new();
            es.drain(&mut seen).unwrap();
            assert!(seen.contains(&Event::Overrun), "{} events", seen.len());
            let on_d0 = h.addresses().unwrap().iter().filter(|a| a.index == d0).count();
            assert_eq!(on_d0, n as usize);

            // Still usable after the overrun.
            seen.clear();
            ip(&["link", "del", "d1"]);
            wait_event(
                &mut es,
                &mut seen,
                |e| matches!(e, Event::LinkGone { name, .. } if name == "d1"),
            );
        });
    }

    #[test]
    fn routes_all_tables() {
        in_netns(|| {
            let mut h = Handle::new().unwrap();
            if add_plain("d0") == "veth" {
                let peer = link(&mut h, "d0p").index;
                h.set_up(peer, true).unwrap();
            }
            let d0 = link(&mut h, "d0").index;
            h.set_up(1, true).unwrap();
            h.set_up(d0, true).unwrap();
            h.add_address(d0, Ipv4Addr::new(192, 0, 2, 1), 24).unwrap();
            ip(&["route", "add", "198.51.100.0/24", "dev", "d0"]);
            let gw = Ipv4Addr::new(192, 0, 2, 254);
            let net = Ipv4Addr::new(203, 0, 113, 0);
            h.add_route_v4(d0, net, 24, Some(gw)).unwrap();
            h.add_route_v4(d0, Ipv4Addr::UNSPECIFIED, 0, Some(gw)).unwrap();

            let routes = h.routes().unwrap();
            let find = |dst: Option<IpAddr>, len: u8, table: u32| {
                routes
                    .iter()
                    .find(|r| r.dst == dst && r.dst_len == len && r.table == table)
                    .cloned()
                    .unwrap_or_else(|| panic!("{dst:?}/{len} table {table} not in {routes:#?}"))
            };
            let v4 = |a, b, c, d| Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)));
            let main = u32::from(RouteHeader::RT_TABLE_MAIN);

            let prefix = find(v4(192, 0, 2, 0), 24, main);
            assert_eq!(prefix.protocol, RTPROT_KERNEL);
            assert_eq!((prefix.kind, prefix.oif, prefix.gateway), (1, Some(d0), None));

            let manual = find(v4(198, 51, 100, 0), 24, main);
            assert_ne!(manual.protocol, RTPROT_KERNEL);
            assert_eq!((manual.kind, manual.oif), (1, Some(d0)));

            let via = find(v4(203, 0, 113, 0), 24, main);
            assert_eq!((via.protocol, via.gateway), (4, Some(gw.into())));
            let default = find(None, 0, main);
            assert_eq!((default.gateway, default.oif), (Some(gw.into()), Some(d0)));
            let shown = ip(&["route", "show", "default"]);
            assert!(shown.contains("via 192.0.2.254 dev d0 proto static"), "{shown}");

            // The local table (255) and IPv6 come along.
            assert_eq!(find(v4(192, 0, 2, 1), 32, 255).kind, 2);
            let lo6 = find(Some(Ipv6Addr::LOCALHOST.into()), 128, 255);
            assert_eq!((lo6.kind, lo6.oif), (2, Some(1)));

            let err = h.add_route_v4(d0, net, 24, Some(gw)).unwrap_err();
            assert_eq!(errno(&err), Some(libc::EEXIST));
            let msg = err.to_string();
            let want = format!("adding route 203.0.113.0/24 via 192.0.2.254 dev d0 (index {d0}): ");
            assert!(msg.starts_with(&want), "{msg}");
        });
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
        let ke = parse_error_payload(NLM_F_CAPPED | NLM_F_ACK_TLVS, &payload)
            .unwrap()
            .unwrap();
        assert_eq!(ke.errno, libc::EINVAL);
        assert_eq!(ke.extack.as_deref(), Some("bad thing"));
        let err = with_context(ke.into_io(), "doing x".into());
        assert_eq!(errno(&err), Some(libc::EINVAL));
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().starts_with("doing x: Invalid argument"), "{err}");
        assert!(err.to_string().ends_with("(kernel: bad thing)"), "{err}");
    }
}
