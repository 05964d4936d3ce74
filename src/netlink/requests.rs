//! The blocking request/response [`Handle`]: dumps of links, addresses and
//! routes, and the changes the daemon makes to them. Every failure is a
//! [`NetlinkError`] naming the operation, the link (name and index) and the
//! address or route involved.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;

use log::{debug, warn};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN,
    NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CREATE, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{RouteHeader, RouteMessage};
use netlink_packet_route::tc::TcMessage;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr};

use super::error::{Fault, NetlinkError, ParseError};
use super::messages::{
    self, broadcast_v4, extack_text, fmt_mac, for_each_message, parse_addr, parse_addr6, parse_error_payload,
    parse_link, parse_qdisc, parse_route, parse_route6, Addr6Detail, AddrInfo, LinkInfo, QdiscInfo,
    Route6Detail, RouteInfo, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWQDISC, RTM_NEWROUTE,
};
use super::{recv_datagram, RECV_BUF_LEN};

// An interrupted dump (NLM_F_DUMP_INTR) is redone this many times before we
// settle for the possibly inconsistent result.
const DUMP_TRIES: usize = 5;
// Longest interface name the kernel accepts (IFNAMSIZ - 1).
const IFNAME_MAX: usize = 15;
// The int that starts an NLMSG_DONE payload: 0, or a negative errno.
const DONE_CODE_LEN: usize = 4;
// Longest prefix of an IPv4 and of an IPv6 address.
const V4_BITS: u8 = 32;
const V6_BITS: u8 = 128;

/// Request/response socket (NETLINK_ROUTE), blocking.
pub struct Handle {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Handle {
    pub fn new() -> Result<Handle, NetlinkError> {
        fn sock_err(op: &'static str) -> impl FnOnce(std::io::Error) -> NetlinkError {
            move |e| Fault::Socket(e).during(format!("{op} rtnetlink socket"))
        }
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(sock_err("opening"))?;
        sock.bind_auto().map_err(sock_err("binding"))?;
        // Connecting makes the kernel refuse unicasts from other processes.
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(sock_err("connecting"))?;
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
        on_msg: impl FnMut(u16, &[u8]),
    ) -> Result<bool, Fault> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut out = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut out);
        exchange(&self.sock, &mut self.buf, seq, &out, on_msg)
    }

    /// Runs a dump, redoing it when the kernel flags it as interrupted by a
    /// concurrent change.
    fn dump<T>(
        &mut self,
        what: &str,
        msg: RouteNetlinkMessage,
        msg_type: u16,
        parse: impl Fn(&[u8]) -> Result<Option<T>, ParseError>,
    ) -> Result<Vec<T>, NetlinkError> {
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
                .map_err(|f| f.during(format!("dumping {what}")))?;
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
    ) -> Result<(), NetlinkError> {
        match self.request(msg, flags | NLM_F_ACK, |_, _| {}) {
            Ok(_) => Ok(()),
            Err(fault) => {
                let link = self.describe(index);
                Err(fault.during(what(&link)))
            }
        }
    }

    /// RTM_GETLINK dump.
    pub fn links(&mut self) -> Result<Vec<LinkInfo>, NetlinkError> {
        let msg = RouteNetlinkMessage::GetLink(LinkMessage::default());
        self.dump("links", msg, RTM_NEWLINK, parse_link)
    }

    /// `Ok(None)` when no such link exists.
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<LinkInfo>, NetlinkError> {
        if name.is_empty() || name.len() > IFNAME_MAX || name.contains('\0') {
            // Cannot be an interface name, so it cannot exist.
            return Ok(None);
        }
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.get_link(msg)
            .map_err(|f| f.during(format!("looking up link {name}")))
    }

    /// `Ok(None)` when no such link exists.
    pub fn link_by_index(&mut self, index: u32) -> Result<Option<LinkInfo>, NetlinkError> {
        if index == 0 || index > i32::MAX as u32 {
            return Ok(None);
        }
        self.get_link(messages::link_change(index))
            .map_err(|f| f.during(format!("looking up link index {index}")))
    }

    fn get_link(&mut self, msg: LinkMessage) -> Result<Option<LinkInfo>, Fault> {
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
                (None, Some(e)) => Err(ParseError::LinkReply(Box::new(e)).into()),
                (None, None) => Err(ParseError::NoLink.into()),
            },
            Err(f) if f.errno() == Some(libc::ENODEV) => Ok(None),
            Err(f) => Err(f),
        }
    }

    /// IPv4 and IPv6 addresses of all links.
    pub fn addresses(&mut self) -> Result<Vec<AddrInfo>, NetlinkError> {
        let msg = RouteNetlinkMessage::GetAddress(AddressMessage::default());
        self.dump("addresses", msg, RTM_NEWADDR, parse_addr)
    }

    /// IPv6 addresses of all links, with flags and lifetimes.
    pub fn ipv6_address_details(&mut self) -> Result<Vec<Addr6Detail>, NetlinkError> {
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
    pub fn add_address_v6(&mut self, index: u32, a: &Addr6Detail) -> Result<(), NetlinkError> {
        let (addr, len) = (a.addr, a.prefix_len);
        check_prefix(len, V6_BITS, || format!("adding {addr}/{len}"))?;
        match self.change(
            RouteNetlinkMessage::NewAddress(messages::addr_v6(index, a)),
            NLM_F_CREATE | NLM_F_EXCL,
            index,
            |link| format!("adding {addr}/{len} to {link}"),
        ) {
            Err(e) if e.is_exists() => Ok(()),
            r => r,
        }
    }

    /// Single-path unicast IPv6 routes of all tables.
    pub fn ipv6_route_details(&mut self) -> Result<Vec<Route6Detail>, NetlinkError> {
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
    pub fn add_route_v6(&mut self, r: &Route6Detail) -> Result<(), NetlinkError> {
        let (dst, len, oif) = (r.dst, r.dst_len, r.oif);
        check_prefix(len, V6_BITS, || format!("adding route {dst}/{len}"))?;
        match self.change(
            RouteNetlinkMessage::NewRoute(messages::route_v6(r)),
            NLM_F_CREATE | NLM_F_EXCL,
            oif,
            |link| format!("adding route {dst}/{len} dev {link}"),
        ) {
            Err(e) if e.is_exists() => Ok(()),
            r => r,
        }
    }

    /// IPv4 and IPv6 routes of all tables.
    pub fn routes(&mut self) -> Result<Vec<RouteInfo>, NetlinkError> {
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

    /// RTM_GETQDISC dump: the qdiscs of link `index` (root, its children,
    /// ingress or clsact), in the kernel's order.
    pub fn qdiscs(&mut self, index: u32) -> Result<Vec<QdiscInfo>, NetlinkError> {
        let Ok(ifindex) = i32::try_from(index) else {
            return Ok(Vec::new());
        };
        let mut msg = TcMessage::default();
        // Kernels that filter dumps by tcm_ifindex do; the others send
        // every link's qdiscs, so the filter below is needed anyway.
        msg.header.index = ifindex;
        let all = self.dump(
            "qdiscs",
            RouteNetlinkMessage::GetQueueDiscipline(msg),
            RTM_NEWQDISC,
            parse_qdisc,
        )?;
        Ok(all.into_iter().filter(|q| q.index == index).collect())
    }

    /// Adds `addr/prefix_len` (with the computed broadcast) to link `index`;
    /// fails with EEXIST ([`NetlinkError::is_exists`]) if it is already there.
    pub fn add_address(&mut self, index: u32, addr: Ipv4Addr, prefix_len: u8) -> Result<(), NetlinkError> {
        self.add_ip_address(index, IpAddr::V4(addr), prefix_len)
    }

    pub fn del_address(&mut self, index: u32, addr: Ipv4Addr, prefix_len: u8) -> Result<(), NetlinkError> {
        self.del_ip_address(index, IpAddr::V4(addr), prefix_len)
    }

    /// Adds a data address of either family: IPv4 with the computed
    /// broadcast; IPv6 plain (no flags, forever), the kernel running DAD for
    /// it. Fails with EEXIST if it is already there.
    pub fn add_ip_address(&mut self, index: u32, addr: IpAddr, prefix_len: u8) -> Result<(), NetlinkError> {
        let mut msg = address_message(index, addr, prefix_len, "adding")?;
        if let IpAddr::V4(a) = addr {
            if let Some(brd) = broadcast_v4(a, prefix_len) {
                msg.attributes.push(AddressAttribute::Broadcast(brd));
            }
        }
        self.change(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            index,
            |link| format!("adding {addr}/{prefix_len} to {link}"),
        )
    }

    /// Removes a data address of either family.
    pub fn del_ip_address(&mut self, index: u32, addr: IpAddr, prefix_len: u8) -> Result<(), NetlinkError> {
        let msg = address_message(index, addr, prefix_len, "removing")?;
        self.change(RouteNetlinkMessage::DelAddress(msg), 0, index, |link| {
            format!("removing {addr}/{prefix_len} from {link}")
        })
    }

    /// Sets or clears IFF_UP, leaving every other flag alone.
    pub fn set_up(&mut self, index: u32, up: bool) -> Result<(), NetlinkError> {
        let mut msg = messages::link_change(index);
        msg.header.flags = if up { LinkFlags::Up } else { LinkFlags::empty() };
        // Only the bits in the change mask are applied.
        msg.header.change_mask = LinkFlags::Up;
        let state = if up { "up" } else { "down" };
        self.change(RouteNetlinkMessage::SetLink(msg), 0, index, |link| {
            format!("setting {link} {state}")
        })
    }

    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<(), NetlinkError> {
        let mut msg = messages::link_change(index);
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        self.change(RouteNetlinkMessage::SetLink(msg), 0, index, |link| {
            format!("setting mtu {mtu} on {link}")
        })
    }

    pub fn set_mac(&mut self, index: u32, mac: [u8; 6]) -> Result<(), NetlinkError> {
        let mut msg = messages::link_change(index);
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        self.change(RouteNetlinkMessage::SetLink(msg), 0, index, |link| {
            format!("setting mac {} on {link}", fmt_mac(&mac))
        })
    }

    pub fn add_route_v4(
        &mut self,
        index: u32,
        dst: Ipv4Addr,
        dst_len: u8,
        gateway: Option<Ipv4Addr>,
    ) -> Result<(), NetlinkError> {
        check_prefix(dst_len, V4_BITS, || format!("adding route {dst}/{dst_len}"))?;
        let via = gateway.map(|gw| format!(" via {gw}")).unwrap_or_default();
        self.change(
            RouteNetlinkMessage::NewRoute(messages::route_v4(index, dst, dst_len, gateway)),
            NLM_F_CREATE | NLM_F_EXCL,
            index,
            |link| format!("adding route {dst}/{dst_len}{via} dev {link}"),
        )
    }

    /// Adds a static route of either family through link `index`: IPv4 as
    /// [`Handle::add_route_v4`]; IPv6 in the main table, RTPROT_STATIC.
    /// `gateway` must be of the destination's family (else InvalidInput).
    pub fn add_route(
        &mut self,
        index: u32,
        dst: IpAddr,
        dst_len: u8,
        gateway: Option<IpAddr>,
    ) -> Result<(), NetlinkError> {
        match route_parts(index, dst, dst_len, gateway)? {
            RouteParts::V4(dst, gw) => self.add_route_v4(index, dst, dst_len, gw),
            RouteParts::V6(r) => {
                let via = gateway.map(|gw| format!(" via {gw}")).unwrap_or_default();
                self.change(
                    RouteNetlinkMessage::NewRoute(messages::route_v6(&r)),
                    NLM_F_CREATE | NLM_F_EXCL,
                    index,
                    |link| format!("adding route {dst}/{dst_len}{via} dev {link}"),
                )
            }
        }
    }

    /// Removes a route [`Handle::add_route`] added.
    pub fn del_route(
        &mut self,
        index: u32,
        dst: IpAddr,
        dst_len: u8,
        gateway: Option<IpAddr>,
    ) -> Result<(), NetlinkError> {
        match route_parts(index, dst, dst_len, gateway)? {
            RouteParts::V4(dst, gw) => self.del_route_v4(index, dst, dst_len, gw),
            RouteParts::V6(r) => {
                let via = gateway.map(|gw| format!(" via {gw}")).unwrap_or_default();
                self.change(
                    RouteNetlinkMessage::DelRoute(messages::route_v6(&r)),
                    0,
                    index,
                    |link| format!("removing route {dst}/{dst_len}{via} dev {link}"),
                )
            }
        }
    }

    pub fn del_route_v4(
        &mut self,
        index: u32,
        dst: Ipv4Addr,
        dst_len: u8,
        gateway: Option<Ipv4Addr>,
    ) -> Result<(), NetlinkError> {
        check_prefix(dst_len, V4_BITS, || format!("removing route {dst}/{dst_len}"))?;
        let via = gateway.map(|gw| format!(" via {gw}")).unwrap_or_default();
        self.change(
            RouteNetlinkMessage::DelRoute(messages::route_v4(index, dst, dst_len, gateway)),
            0,
            index,
            |link| format!("removing route {dst}/{dst_len}{via} dev {link}"),
        )
    }
}

/// Refuses a prefix longer than the address; `op` names the operation.
fn check_prefix(len: u8, max: u8, op: impl FnOnce() -> String) -> Result<(), NetlinkError> {
    if len > max {
        return Err(NetlinkError::PrefixTooLong { op: op(), len, max });
    }
    Ok(())
}

// Manual Debug: the receive buffer would print kilobytes of bytes.
impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("fd", &self.sock.as_raw_fd())
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

/// A route of one family, checked.
enum RouteParts {
    V4(Ipv4Addr, Option<Ipv4Addr>),
    V6(Route6Detail),
}

/// RTPROT_STATIC: routes an administrator (here: the configuration) added.
const RTPROT_STATIC: u8 = 4;

fn route_parts(
    index: u32,
    dst: IpAddr,
    dst_len: u8,
    gateway: Option<IpAddr>,
) -> Result<RouteParts, NetlinkError> {
    match (dst, gateway) {
        (IpAddr::V4(d), None) => Ok(RouteParts::V4(d, None)),
        (IpAddr::V4(d), Some(IpAddr::V4(g))) => Ok(RouteParts::V4(d, Some(g))),
        (IpAddr::V6(d), g @ (None | Some(IpAddr::V6(_)))) => {
            check_prefix(dst_len, V6_BITS, || format!("adding route {d}/{dst_len}"))?;
            Ok(RouteParts::V6(Route6Detail {
                table: u32::from(RouteHeader::RT_TABLE_MAIN),
                protocol: RTPROT_STATIC,
                dst: d,
                dst_len,
                gateway: match g {
                    Some(IpAddr::V6(g)) => Some(g),
                    _ => None,
                },
                oif: index,
                metric: None,
                onlink: false,
                pref: None,
            }))
        }
        (_, Some(g)) => Err(NetlinkError::GatewayFamily {
            op: format!("adding route {dst}/{dst_len} via {g}"),
        }),
    }
}

/// An IPv6 address as `ip addr add` gives it: no flags, valid and preferred
/// forever.
/// The message for `addr/prefix_len` on link `index`, either family, its
/// prefix length checked (`doing` names the request in the error).
fn address_message(
    index: u32,
    addr: IpAddr,
    prefix_len: u8,
    doing: &str,
) -> Result<AddressMessage, NetlinkError> {
    let bits = if addr.is_ipv4() { V4_BITS } else { V6_BITS };
    check_prefix(prefix_len, bits, || format!("{doing} {addr}/{prefix_len}"))?;
    Ok(match addr {
        IpAddr::V4(a) => messages::addr_v4(index, a, prefix_len),
        IpAddr::V6(a) => messages::addr_v6(index, &plain_v6(index, a, prefix_len)),
    })
}

fn plain_v6(index: u32, addr: std::net::Ipv6Addr, prefix_len: u8) -> Addr6Detail {
    Addr6Detail {
        index,
        addr,
        prefix_len,
        flags: 0,
        valid_lft: messages::INFINITY_LIFE_TIME,
        preferred_lft: messages::INFINITY_LIFE_TIME,
        proto: 0,
        metric: None,
    }
}

/// Sends the request `out` (sequence number `seq`) on `sock` and feeds
/// every reply message for it to `on_msg` until the request is finished:
/// NLMSG_DONE for dumps, the ack otherwise. Returns whether a dump was
/// interrupted (NLM_F_DUMP_INTR). Any netlink family's request/response
/// socket: rtnetlink's [`Handle`] and the socket diagnostics.
pub(super) fn exchange(
    sock: &Socket,
    buf: &mut Vec<u8>,
    seq: u32,
    out: &[u8],
    mut on_msg: impl FnMut(u16, &[u8]),
) -> Result<bool, Fault> {
    loop {
        match sock.send(out, 0) {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Fault::Socket(e)),
        }
    }

    let mut interrupted = false;
    let mut finished: Option<Result<(), Fault>> = None;
    loop {
        let n = match recv_datagram(sock, buf) {
            Ok(n) => n,
            Err(e) => break Err(Fault::Socket(e)),
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
                        Some(fault) => Err(fault),
                    });
                }
                NLMSG_DONE => {
                    // The payload is an int: 0, or a negative errno if
                    // the dump failed part way.
                    let code = payload
                        .get(..DONE_CODE_LEN)
                        .and_then(|b| b.try_into().ok())
                        .map(i32::from_ne_bytes)
                        .unwrap_or(0);
                    finished = Some(if code < 0 {
                        Err(Fault::Kernel {
                            errno: code.saturating_neg(),
                            // DONE carries its TLVs right after the code.
                            extack: (h.flags & NLM_F_ACK_TLVS != 0)
                                .then(|| extack_text(payload.get(DONE_CODE_LEN..).unwrap_or(&[])))
                                .flatten(),
                        })
                    } else {
                        Ok(())
                    });
                }
                NLMSG_OVERRUN => return Err(ParseError::Overrun.into()),
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
            Some(Err(fault)) => break Err(fault),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::RTPROT_KERNEL;
    use super::*;
    use std::net::{IpAddr, Ipv6Addr};
    use std::sync::mpsc;
    use std::thread;

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
            let tid = crate::sys::testns::gettid();
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
            assert_eq!(err.errno(), Some(libc::EINVAL), "{err}");
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
            assert_eq!(err.errno(), Some(libc::ENODEV), "{err}");
            assert!(err.is_no_device() && err.is_not_found(), "{err}");
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
                flags: crate::netlink::IFA_F_PERMANENT,
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
            assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
            assert_eq!(err.errno(), Some(libc::EEXIST));
            assert!(err.is_exists(), "{err}");
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
            assert_eq!(err.errno(), Some(libc::EADDRNOTAVAIL));
            assert!(err.is_not_found(), "{err}");
            assert!(
                err.to_string().starts_with("removing 192.0.2.200/24 from d0"),
                "{err}"
            );
            let err = h.add_address(idx, a, 33).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
            assert!(
                matches!(err, NetlinkError::PrefixTooLong { len: 33, max: 32, .. }),
                "{err}"
            );

            // IPv6 comes through the same dump.
            h.set_up(1, true).unwrap();
            let all = h.addresses().unwrap();
            for (addr, prefix_len) in [
                (IpAddr::from(Ipv6Addr::LOCALHOST), 128),
                (Ipv4Addr::LOCALHOST.into(), 8),
            ] {
                let lo = |x: &&AddrInfo| x.index == 1 && x.addr == addr && x.prefix_len == prefix_len;
                assert!(all.iter().any(|x| lo(&x)), "{addr}/{prefix_len} not in {all:?}");
            }
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
            assert_eq!(err.errno(), Some(libc::EEXIST));
            assert!(err.is_exists(), "{err}");
            let msg = err.to_string();
            let want = format!("adding route 203.0.113.0/24 via 192.0.2.254 dev d0 (index {d0}): ");
            assert!(msg.starts_with(&want), "{msg}");
        });
    }
}
