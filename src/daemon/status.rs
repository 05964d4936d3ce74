//! The daemon's state as the control socket reports it.

use super::slots::Slots;
use super::Daemon;
use crate::control::{
    AddressState, AddressStatus, Counters, GroupStatus, LinkState, MemberStatus, ProbeFamily, Reply, Request,
    TargetMode,
};
use crate::datapath::buckets::Slot;
use crate::detect::probe::Method;
use crate::group::Group;
use std::time::Instant;

/// Positions of ipmpstat's FLAGS column: i s m b M d h.
const FLAG_CHARS: [char; 7] = ['i', 's', 'm', 'b', 'M', 'd', 'h'];

/// A member's FLAGS: i s m b M d h. The one nominee takes the group's IPv4
/// multicast and broadcast (m, b) and, while IPv6 is on on the group
/// interface, its IPv6 multicast (M): ipmpd elects one member for both
/// families. d: taken down for IP by the administrator (offline), as
/// Solaris shows offline members; h: out of service for a duplicate
/// hardware address.
fn member_flags(m: &crate::group::Member, nominee: bool, ipv6: bool) -> String {
    let set = [
        m.inactive,
        m.standby,
        nominee,
        nominee,
        nominee && ipv6,
        m.offline,
        m.dup_hwaddr,
    ];
    FLAG_CHARS
        .iter()
        .zip(set)
        .map(|(&c, on)| if on { c } else { '-' })
        .collect()
}

impl Daemon {
    /// Answers one control request. Changes need root (uid from
    /// SO_PEERCRED); whether the group allows them is the group core's rule.
    pub(super) fn handle_request(&mut self, req: &Request, uid: u32) -> Reply {
        if !req.reads_only() && uid != 0 {
            return Reply::error(format!(
                "{}: permission denied (only root may change group {})",
                req.name(),
                self.cfg.group
            ));
        }
        let checked = match req {
            Request::Status => return Reply::Status(Box::new(self.status())),
            Request::Probes => {
                return if self.slots.probers().next().is_some() {
                    Reply::Done
                } else {
                    Reply::error("probe-based failure detection is disabled")
                };
            }
            Request::Reload => {
                log::info!("reload requested by uid {uid}");
                return match self.try_reload() {
                    Ok(()) => Reply::Done,
                    Err(e) => {
                        log::error!("{e}");
                        Reply::Error(e)
                    }
                };
            }
            Request::Offline { member } => self.group.offline_check(member),
            Request::Online { member } => self.group.online_check(member),
            Request::Standby { member, standby } => self.group.standby_check(member, *standby),
        };
        let event = match checked {
            Ok(event) => event,
            Err(refusal) => return Reply::error(refusal),
        };
        log::info!(
            "{} {} requested by uid {uid}",
            req.name(),
            req.member().unwrap_or_default()
        );
        let acts = self.group.handle(event, Instant::now());
        self.perform(acts);
        // Offline changes what a member accepts: the data plane must know.
        self.publish();
        Reply::Done
    }

    pub(super) fn status(&self) -> GroupStatus {
        render(
            &self.group,
            &self.cfg.interface,
            &self.slots,
            self.egress.as_ref(),
            self.ipv6_on(),
        )
    }

    /// Whether IPv6 is on on the group interface (its `disable_ipv6` is 0):
    /// then the nominee is the IPv6 multicast nominee too (flag M). Read
    /// when asked, so it follows whatever turned it on or off; unreadable
    /// counts as off.
    fn ipv6_on(&self) -> bool {
        super::detection::ipv6_on(&self.cfg.interface)
    }
}

/// The status of a group from its core and its per-slot state, `ipv6`
/// whether IPv6 is on on the group interface. Pure but for the fast paths'
/// counters (`egress`, and each member's inbound ones): the model test
/// renders it after every step of random event sequences.
pub(super) fn render(
    g: &Group,
    interface: &str,
    slots: &Slots,
    egress: Option<&super::egress::Egress>,
    ipv6: bool,
) -> GroupStatus {
    let active_names: Vec<String> = g
        .active()
        .iter()
        .filter_map(|&s| g.members().get(usize::from(s)))
        .map(|m| m.name.clone())
        .collect();
    let members = g
        .members()
        .iter()
        .enumerate()
        .filter(|(_, m)| !m.removed)
        .map(|(i, m)| {
            let slot = i as Slot;
            let nominee = g.nominee() == Some(slot);
            let flags = member_flags(m, nominee, ipv6);
            let st = slots.get(slot);
            let prober = slots.prober(slot);
            let target_mode = match prober {
                None => TargetMode::Disabled,
                Some(p) if p.discovering() => TargetMode::Multicast,
                Some(_) => TargetMode::Routes,
            };
            let test_address = match prober.map(|p| p.method()) {
                Some(Method::Icmp { test_addr }) => Some(test_addr.to_string()),
                _ => None,
            };
            MemberStatus {
                name: m.name.clone(),
                active: g.active().contains(&slot),
                flags,
                link: if !m.present {
                    LinkState::Unknown
                } else if m.link_up {
                    LinkState::Up
                } else {
                    LinkState::Down
                },
                probe: m.probe.into(),
                state: m.state().into(),
                target_mode,
                test_address,
                targets: prober
                    .map(|p| p.targets().iter().map(|t| t.to_string()).collect())
                    .unwrap_or_default(),
                inactive: m.inactive,
                counters: st
                    .and_then(|s| s.taken.as_ref())
                    .map(|t| {
                        let c = &t.io.counters;
                        let (fast_frames, fast_bytes) = t.fast.delivered();
                        let (sent_frames, sent_bytes) = egress
                            .map(|e| e.sent(slot))
                            .map(|(f, b)| {
                                (
                                    f.saturating_sub(t.egress_base.0),
                                    b.saturating_sub(t.egress_base.1),
                                )
                            })
                            .unwrap_or_default();
                        Counters {
                            rx_frames: c.rx.frames.get() + fast_frames,
                            rx_bytes: c.rx.bytes.get() + fast_bytes,
                            rx_fast_frames: fast_frames,
                            rx_fast_bytes: fast_bytes,
                            tx_frames: c.tx_frames() + sent_frames,
                            tx_bytes: c.tx_bytes() + sent_bytes,
                            tx_fast_frames: sent_frames,
                            tx_fast_bytes: sent_bytes,
                            rx_drops: c.rx.drop_counts(),
                            tx_drops: c.tx_drop_counts(),
                        }
                    })
                    .unwrap_or_default(),
                rtt_us: prober.and_then(|p| p.rtt()).map(|d| d.as_micros() as u64),
                ipv6: st.and_then(|s| s.v6.as_ref()).map(|v6| ProbeFamily {
                    target_mode: if v6.prober.discovering() {
                        TargetMode::Multicast
                    } else {
                        TargetMode::Routes
                    },
                    test_address: v6.test_addr().map(|a| a.to_string()),
                    targets: v6.prober.targets().iter().map(|t| t.to_string()).collect(),
                }),
            }
        })
        .collect();
    let addresses = g
        .bindings()
        .iter()
        .map(|(addr, slot)| AddressStatus {
            address: addr.to_string(),
            state: if slot.is_some() {
                AddressState::Up
            } else {
                AddressState::Down
            },
            inbound: slot
                .and_then(|s| g.members().get(usize::from(s)))
                .map(|m| m.name.clone()),
            outbound: active_names.clone(),
        })
        .collect();
    GroupStatus {
        interface: interface.to_string(),
        group: g.name().to_string(),
        state: g.state().into(),
        fdt_ms: slots.probers().map(|p| p.fdt().as_millis() as u64).max(),
        members,
        addresses,
        failovers: g.failovers(),
    }
}

#[cfg(test)]
mod tests {
    use super::member_flags;
    use crate::group::Member;

    #[test]
    fn the_nominee_is_m_and_b_and_with_ipv6_on_m_too() {
        let m = Member::new("e1000g0");
        assert_eq!(member_flags(&m, true, false), "--mb---");
        assert_eq!(member_flags(&m, true, true), "--mbM--");
    }

    #[test]
    fn m_never_marks_a_member_that_is_not_the_nominee() {
        let m = Member::new("e1000g1");
        assert_eq!(member_flags(&m, false, true), "-------");
        assert_eq!(member_flags(&m, false, false), "-------");
    }

    #[test]
    fn m_keeps_its_position_among_the_other_flags() {
        let mut m = Member::new("rge0").standby(true);
        m.inactive = true;
        m.offline = true;
        m.dup_hwaddr = true;
        assert_eq!(member_flags(&m, true, true), "ismbMdh");
        assert_eq!(member_flags(&m, true, false), "ismb-dh");
        assert_eq!(member_flags(&m, false, true), "is---dh");
    }
}
