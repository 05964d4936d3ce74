//! The non-blocking multicast [`EventSocket`]: link, address and qdisc
//! change notifications (RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR,
//! RTNLGRP_IPV6_IFADDR, RTNLGRP_TC) turned into [`Event`]s, and
//! kernel-side losses into [`Event::Overrun`].

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

use log::{debug, warn};
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr};

use super::error::{Fault, NetlinkError};
use super::messages::{
    for_each_message, parse_addr, parse_link, parse_qdisc, AddrInfo, LinkInfo, RTM_DELADDR, RTM_DELLINK,
    RTM_DELQDISC, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWQDISC,
};
use super::{recv_datagram, RECV_BUF_LEN};

// A burst of link changes (many VLANs, a flapping bond) overflows the
// default ~200 KiB quickly.
const EVENT_RCVBUF: libc::c_int = 4 * 1024 * 1024;

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
    /// RTM_NEWQDISC or RTM_DELQDISC: link `index`'s traffic control
    /// changed; what it is now takes a [`super::Handle::qdiscs`] dump.
    Qdisc { index: u32 },
    /// The kernel dropped events (ENOBUFS): the caller must re-read state with Handle.
    Overrun,
}

/// Non-blocking multicast listener subscribed to RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR
/// and RTNLGRP_TC (of which only qdisc changes are reported; filters and actions are skipped).
pub struct EventSocket {
    sock: Socket,
    buf: Vec<u8>,
}

impl EventSocket {
    pub fn new() -> Result<EventSocket, NetlinkError> {
        fn ctx(what: &str) -> impl FnOnce(io::Error) -> NetlinkError + '_ {
            move |e| Fault::Socket(e).during(format!("event socket: {what}"))
        }
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(ctx("opening"))?;
        sock.bind_auto().map_err(ctx("binding"))?;
        // Refuse unicasts from other processes; multicast is unaffected.
        sock.connect(&SocketAddr::new(0, 0)).map_err(ctx("connecting"))?;
        for group in [
            libc::RTNLGRP_LINK,
            libc::RTNLGRP_IPV4_IFADDR,
            libc::RTNLGRP_IPV6_IFADDR,
            libc::RTNLGRP_TC,
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
    pub fn drain(&mut self, out: &mut Vec<Event>) -> Result<(), NetlinkError> {
        loop {
            let n = match recv_datagram(&self.sock, &mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    // The socket stays usable; what is still queued is newer
                    // than the loss, so keep reading after the marker.
                    if out.last() != Some(&Event::Overrun) {
                        out.push(Event::Overrun);
                    }
                    continue;
                }
                Err(e) => return Err(Fault::Socket(e).during("reading netlink events")),
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
        RTM_NEWQDISC | RTM_DELQDISC => {
            parse_qdisc(payload).map(|q| q.map(|q| Event::Qdisc { index: q.index }))
        }
        _ => Ok(None),
    };
    parsed.unwrap_or_else(|e| {
        debug!("skipping unparseable netlink event (type {msg_type}): {e}");
        None
    })
}

/// SO_RCVBUFFORCE ignores rmem_max but needs CAP_NET_ADMIN; without it
/// SO_RCVBUF gets as much as rmem_max allows.
fn set_big_rcvbuf(sock: &Socket) {
    let size: libc::c_int = EVENT_RCVBUF;
    let Err(e) = crate::sys::setsockopt(sock, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &size) else {
        return;
    };
    debug!("SO_RCVBUFFORCE failed ({e}), falling back to SO_RCVBUF");
    if let Err(e) = sock.set_rx_buf_sz(size) {
        warn!("cannot enlarge netlink event buffer: {e}");
    }
}

// Manual Debug: the receive buffer would print kilobytes of bytes.
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
    use super::super::testutil::*;
    use super::super::Handle;
    use super::*;
    use std::net::Ipv4Addr;
    use std::thread;
    use std::time::{Duration, Instant};

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
                flags: crate::netlink::IFA_F_PERMANENT,
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

    fn tc(args: &[&str]) {
        let out = std::process::Command::new("tc")
            .args(args)
            .output()
            .expect("running tc");
        assert!(
            out.status.success(),
            "tc {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn qdisc_changes_are_reported_and_dumped() {
        in_netns(|| {
            let mut h = Handle::new().unwrap();
            add_plain("q0");
            add_plain("q1");
            let (q0, q1) = (link(&mut h, "q0").index, link(&mut h, "q1").index);
            h.set_up(q0, true).unwrap();
            let start = h.qdiscs(q0).unwrap();
            assert!(start.iter().all(|q| q.index == q0), "{start:?}");
            assert!(start.iter().all(|q| q.parent != crate::netlink::TC_H_INGRESS));

            let mut es = EventSocket::new().unwrap();
            let mut seen = Vec::new();
            tc(&[
                "qdisc", "add", "dev", "q0", "root", "handle", "1:", "tbf", "rate", "1mbit", "burst",
                "32kbit", "latency", "400ms",
            ]);
            wait_event(&mut es, &mut seen, |e| *e == Event::Qdisc { index: q0 });
            let now = h.qdiscs(q0).unwrap();
            assert!(
                now.iter().any(|q| q.kind == "tbf"
                    && q.parent == crate::netlink::TC_H_ROOT
                    && q.handle == 0x0001_0000),
                "{now:?}"
            );
            tc(&["qdisc", "add", "dev", "q0", "clsact"]);
            tc(&["qdisc", "add", "dev", "q1", "clsact"]);
            wait_event(&mut es, &mut seen, |e| *e == Event::Qdisc { index: q1 });
            let now = h.qdiscs(q0).unwrap();
            assert!(
                now.iter()
                    .any(|q| q.kind == "clsact" && q.parent == crate::netlink::TC_H_INGRESS),
                "{now:?}"
            );
            // Only q0's: q1's clsact is not among them.
            assert!(now.iter().all(|q| q.index == q0), "{now:?}");

            // Deleting both puts the kernel's default back.
            seen.clear();
            tc(&["qdisc", "del", "dev", "q0", "clsact"]);
            tc(&["qdisc", "del", "dev", "q0", "root"]);
            wait_event(&mut es, &mut seen, |e| *e == Event::Qdisc { index: q0 });
            assert!(
                eventually(|| h.qdiscs(q0).unwrap() == start),
                "{:?} / {start:?}",
                h.qdiscs(q0)
            );
            // A filter is not a qdisc change.
            seen.clear();
            tc(&[
                "filter", "add", "dev", "q1", "egress", "protocol", "all", "u32", "match", "u32", "0", "0",
                "action", "mirred", "egress", "mirror", "dev", "lo",
            ]);
            thread::sleep(Duration::from_millis(50));
            es.drain(&mut seen).unwrap();
            assert!(seen.iter().all(|e| !matches!(e, Event::Qdisc { .. })), "{seen:?}");
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
}
