//! What the data plane and the neighbours are told: the forwarding table
//! published, and the group core's actions performed in order
//! (announcements and IGMP re-queries once the data threads run the new
//! table; notices logged at their level).

use super::{Daemon, TAKE_UP_TIMEOUT};
use crate::datapath::arp::{gratuitous_arp, igmp_general_query};
use crate::datapath::buckets::Slot;
use crate::datapath::ndp::{mld_general_query, unsolicited_na};
use crate::datapath::plan::{Plan, Port};
use crate::datapath::shell::Table;
use crate::datapath::vnet::VNET_HDR_LEN;
use crate::group;
use crate::wire::ipv6;
use std::net::IpAddr;
use std::time::Instant;

impl Daemon {
    pub(super) fn publish(&mut self) -> u64 {
        self.generation += 1;
        let offline: Vec<bool> = self
            .group
            .members()
            .iter()
            .map(group::Member::out_of_service)
            .collect();
        let plan = Plan {
            generation: self.generation,
            group_mac: self.group_mac,
            ports: (0..self.slots.len())
                .map(|i| {
                    self.slots.taken(i as Slot).map(|t| Port {
                        mac: t.mac,
                        accept: !offline.get(i).copied().unwrap_or(true),
                        test_addr: self.test_addr(i as Slot),
                        test_addr6: self.test_addr6(i as Slot),
                    })
                })
                .collect(),
            buckets: self.group.buckets().clone(),
            nominee: self.group.nominee(),
            bindings: self
                .group
                .bindings()
                .iter()
                .filter_map(|(a, s)| match (a, s) {
                    (IpAddr::V4(a), Some(s)) => Some((a, s)),
                    _ => None,
                })
                .collect(),
            bindings6: self
                .group
                .bindings()
                .iter()
                .filter_map(|(a, s)| match (a, s) {
                    (IpAddr::V6(a), Some(s)) => Some((a, s)),
                    _ => None,
                })
                .collect(),
            outbound: self.cfg.outbound,
            seed: self.seed,
            probing: self.slots.probers().next().is_some(),
            targets: self.probe_targets(),
            icmp_id: self.icmp_id,
            probe_key: Some(self.probe_key.clone()),
        };
        let members = (0..self.slots.len())
            .map(|i| self.slots.taken(i as Slot).map(|t| t.io.clone()))
            .collect();
        self.sync_fastpath(&plan);
        self.sync_egress(&plan);
        self.shared.publish(Table { plan, members });
        self.generation
    }

    pub(super) fn set_multicast(&self, slot: Slot, join: bool) {
        let Some(t) = self.slots.taken(slot) else {
            return;
        };
        let r = if join {
            t.io.rx.join_all_multicast()
        } else {
            t.io.rx.leave_all_multicast()
        };
        if let Err(e) = r {
            log::warn!("{}: {e}", t.io.name);
        }
    }

    /// Waits until the data threads run with the table just `published`
    /// (if any; taken, so once per table).
    fn wait_published(&self, published: &mut Option<u64>) {
        let Some(g) = published.take() else { return };
        if self.dataplane.is_some() && !self.shared.wait_taken(g, TAKE_UP_TIMEOUT) {
            log::warn!("data plane slow to take up table {g}");
        }
    }

    /// Performs the group's actions. Announcements, IGMP re-queries and the
    /// notices after a new table wait until the data threads run with it
    /// (when they run at all), so a logged move has taken effect.
    pub(super) fn perform(&mut self, acts: Vec<group::Action>) {
        let running = self.dataplane.is_some();
        let mut published = None;
        for a in acts {
            match a {
                group::Action::Publish => published = Some(self.publish()),
                group::Action::Announce { addr, slot } => {
                    self.wait_published(&mut published);
                    self.announce(addr, slot);
                    self.schedule_garp(addr, slot, Instant::now());
                }
                group::Action::Notice(n) => {
                    self.wait_published(&mut published);
                    log::log!(n.level(), "{n}");
                }
                group::Action::Carrier(on) => {
                    if let Err(e) = self.tap.set_carrier(on) {
                        log::error!("carrier of {}: {e}", self.cfg.interface);
                    }
                }
                group::Action::NomineeMoved { from, to } => {
                    if let Some(f) = from {
                        self.set_multicast(f, false);
                    }
                    if let Some(t) = to {
                        self.set_multicast(t, true);
                        log::info!(
                            "multicast and broadcast now through {} in group {}",
                            self.group.members()[usize::from(t)].name,
                            self.cfg.group
                        );
                        if running {
                            self.wait_published(&mut published);
                            self.requery_igmp(t);
                            self.requery_mld(t);
                        }
                    }
                }
            }
        }
        self.sync_probers();
    }

    /// Gratuitous ARP (IPv4) or unsolicited neighbour advertisement (IPv6)
    /// from the member an address is now bound to.
    pub(super) fn announce(&self, addr: IpAddr, slot: Slot) {
        if self.send_announcement(addr, slot) {
            let what = match addr {
                IpAddr::V4(_) => "gratuitous ARP",
                IpAddr::V6(_) => "unsolicited neighbour advertisement",
            };
            log::info!(
                "{addr} now bound to {} ({what} sent)",
                self.group.members()[usize::from(slot)].name
            );
        }
    }

    /// One gratuitous ARP, or for IPv6 one unsolicited NA (to all nodes,
    /// S=0, O=1, R when the group interface forwards, the member's MAC as
    /// target link-layer address).
    pub(super) fn send_announcement(&self, addr: IpAddr, slot: Slot) -> bool {
        let Some(t) = self.slots.taken(slot) else {
            return false;
        };
        let mut f = vec![0u8; VNET_HDR_LEN];
        match addr {
            IpAddr::V4(a) => f.extend_from_slice(&gratuitous_arp(t.mac, a)),
            IpAddr::V6(a) => {
                // Read when sent: forwarding may be turned on at any time.
                let router = crate::sys::sysctl::read("ipv6", &self.cfg.interface, "forwarding")
                    .is_ok_and(|v| v.trim() == "1");
                f.extend_from_slice(&unsolicited_na(t.mac, a, router))
            }
        }
        match t.io.send_control(&f) {
            Ok(()) => true,
            Err(e) => {
                log::warn!("announcing {addr} on {}: {e}", t.io.name);
                false
            }
        }
    }

    /// Makes the kernel re-send its IGMP reports (they leave through the new
    /// nominee) by injecting a general query into the group interface.
    pub(super) fn requery_igmp(&self, slot: Slot) {
        let Some(t) = self.slots.taken(slot) else {
            return;
        };
        let mut f = vec![0u8; VNET_HDR_LEN];
        f.extend_from_slice(&igmp_general_query(t.mac));
        if let Err(e) = self.tap.write(&f) {
            log::warn!("IGMP re-query on {}: {e}", self.cfg.interface);
        }
    }

    /// The same for MLD: an MLDv2 general query from the new nominee's
    /// link-local address (Linux ignores queries from other sources).
    pub(super) fn requery_mld(&self, slot: Slot) {
        let Some(t) = self.slots.taken(slot) else {
            return;
        };
        let mut f = vec![0u8; VNET_HDR_LEN];
        f.extend_from_slice(&mld_general_query(t.mac, ipv6::link_local_from_mac(t.mac)));
        if let Err(e) = self.tap.write(&f) {
            log::warn!("MLD re-query on {}: {e}", self.cfg.interface);
        }
    }
}
