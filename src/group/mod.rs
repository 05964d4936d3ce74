//! The group: which members are active, which member each data address is
//! bound to, and which member is the multicast/broadcast nominee.
//!
//! Sans-IO: [`Group::handle`] takes an event and the current time and
//! returns actions; the daemon performs them. Nothing here reads a clock or
//! touches a socket, so every rule is unit-tested with synthetic input.

mod bindings;

pub use bindings::Bindings;

use crate::datapath::buckets::{Buckets, Slot};
use std::net::Ipv4Addr;
use std::time::Instant;

/// What the group knows about one configured member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// The interface exists and the daemon has taken it over.
    pub present: bool,
    /// Carrier (IFF_LOWER_UP).
    pub link_up: bool,
    /// Taken out of service by the administrator.
    pub offline: bool,
}

impl Member {
    pub fn new(name: &str) -> Member {
        Member {
            name: name.to_string(),
            present: false,
            link_up: false,
            offline: false,
        }
    }

    fn usable(&self) -> bool {
        self.present && self.link_up && !self.offline
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The member was taken over (at start or when it appeared later).
    Joined {
        slot: Slot,
        link_up: bool,
    },
    /// The member's interface disappeared.
    Gone {
        slot: Slot,
    },
    Link {
        slot: Slot,
        up: bool,
    },
    AddressAdded(Ipv4Addr),
    AddressRemoved(Ipv4Addr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The forwarding state changed: publish a new table.
    Publish,
    /// After the new table is taken up: gratuitous ARP for `addr` from `slot`.
    Announce { addr: Ipv4Addr, slot: Slot },
    /// Carrier of the group interface: on while any member is active.
    Carrier(bool),
    /// Multicast reception moves: drop the old nominee's membership, join on
    /// the new one and make the kernel re-send its reports through it.
    NomineeMoved { from: Option<Slot>, to: Option<Slot> },
}

#[derive(Debug, Clone)]
pub struct Group {
    name: String,
    members: Vec<Member>,
    /// Active members in activation order; the head becomes nominee.
    active: Vec<Slot>,
    buckets: Buckets,
    bindings: Bindings,
    nominee: Option<Slot>,
}

impl Group {
    pub fn new(name: &str, members: Vec<Member>) -> Group {
        assert!(members.len() < usize::from(crate::datapath::buckets::NO_SLOT));
        Group {
            name: name.to_string(),
            members,
            active: Vec::new(),
            buckets: Buckets::default(),
            bindings: Bindings::default(),
            nominee: None,
        }
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }
    pub fn active(&self) -> &[Slot] {
        &self.active
    }
    pub fn buckets(&self) -> &Buckets {
        &self.buckets
    }
    pub fn bindings(&self) -> &Bindings {
        &self.bindings
    }
    pub fn nominee(&self) -> Option<Slot> {
        self.nominee
    }
    pub fn slot_of(&self, name: &str) -> Option<Slot> {
        self.members
            .iter()
            .position(|m| m.name == name)
            .map(|i| i as Slot)
    }

    /// Time-driven work (probing, flap damping) arrives with detection; the
    /// link-only group has none.
    pub fn next_deadline(&self) -> Option<Instant> {
        None
    }

    pub fn handle(&mut self, ev: Event, _now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match ev {
            Event::Joined { slot, link_up } => {
                let m = &mut self.members[usize::from(slot)];
                m.present = true;
                m.link_up = link_up;
                log::info!("{} joined group {} (link {})", m.name, self.name, updown(link_up));
            }
            Event::Gone { slot } => {
                let m = &mut self.members[usize::from(slot)];
                m.present = false;
                m.link_up = false;
                log::warn!("{} disappeared from group {}", m.name, self.name);
            }
            Event::Link { slot, up } => {
                let m = &mut self.members[usize::from(slot)];
                if m.link_up == up {
                    return out;
                }
                m.link_up = up;
                if up {
                    log::info!("The link has come up on {}", m.name);
                } else {
                    log::warn!("The link has gone down on {}", m.name);
                }
            }
            Event::AddressAdded(a) => {
                if let Some(slot) = self.bindings.add(a, &self.active) {
                    out.push(Action::Publish);
                    out.push(Action::Announce { addr: a, slot });
                } else if self.bindings.contains(a) {
                    out.push(Action::Publish);
                }
                return out;
            }
            Event::AddressRemoved(a) => {
                if self.bindings.remove(a) {
                    out.push(Action::Publish);
                }
                return out;
            }
        }
        self.reconcile(&mut out);
        out
    }

    /// Brings the active set, buckets, bindings and nominee in line with the
    /// members' states.
    fn reconcile(&mut self, out: &mut Vec<Action>) {
        let members = &self.members;
        let mut active: Vec<Slot> = self
            .active
            .iter()
            .copied()
            .filter(|&s| members[usize::from(s)].usable())
            .collect();
        for (i, m) in members.iter().enumerate() {
            let s = i as Slot;
            if m.usable() && !active.contains(&s) {
                active.push(s);
            }
        }
        if active == self.active {
            return;
        }
        let was_empty = self.active.is_empty();
        self.active = active;
        self.buckets.rebalance(&self.active, &[]);
        for (addr, slot) in self.bindings.rebalance(&self.active) {
            out.push(Action::Announce { addr, slot });
        }
        let nominee = match self.nominee {
            Some(n) if self.active.contains(&n) => Some(n),
            _ => self.active.first().copied(),
        };
        // Publish first: announcements wait until the data plane uses it.
        out.insert(0, Action::Publish);
        if nominee != self.nominee {
            out.push(Action::NomineeMoved {
                from: self.nominee,
                to: nominee,
            });
            self.nominee = nominee;
        }
        if was_empty != self.active.is_empty() {
            out.push(Action::Carrier(!self.active.is_empty()));
            if self.active.is_empty() {
                log::error!("All IP interfaces in group {} are now unusable", self.name);
            } else {
                let first = &self.members[usize::from(self.active[0])].name;
                log::info!(
                    "At least 1 IP interface ({}) in group {} is now usable",
                    first,
                    self.name
                );
            }
        }
    }
}

fn updown(up: bool) -> &'static str {
    if up {
        "up"
    } else {
        "down"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group3() -> (Group, Instant) {
        let g = Group::new(
            "production0",
            vec![
                Member::new("e1000g0"),
                Member::new("e1000g1"),
                Member::new("rge0"),
            ],
        );
        (g, Instant::now())
    }

    fn a(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(192, 0, 2, n)
    }

    fn join(g: &mut Group, t: Instant, slot: Slot, link_up: bool) -> Vec<Action> {
        g.handle(Event::Joined { slot, link_up }, t)
    }

    #[test]
    fn start_with_one_member_down_gives_it_no_binding() {
        let (mut g, t) = group3();
        join(&mut g, t, 0, true);
        join(&mut g, t, 1, false);
        join(&mut g, t, 2, true);
        for i in 0..4 {
            g.handle(Event::AddressAdded(a(200 + i)), t);
        }
        assert_eq!(g.active(), &[0, 2]);
        assert_eq!(g.bindings().count_on(1), 0);
        assert_eq!(g.bindings().count_on(0), 2);
        assert_eq!(g.bindings().count_on(2), 2);
        assert_eq!(g.buckets().load(1), 0);
        assert_eq!(g.nominee(), Some(0));
    }

    #[test]
    fn three_addresses_land_on_three_members() {
        let (mut g, t) = group3();
        for s in 0..3 {
            join(&mut g, t, s, true);
        }
        for i in 0..3 {
            let acts = g.handle(Event::AddressAdded(a(200 + i)), t);
            assert!(matches!(acts[1], Action::Announce { .. }));
        }
        for s in 0..3 {
            assert_eq!(g.bindings().count_on(s), 1);
        }
    }

    #[test]
    fn link_loss_moves_addresses_nominee_and_announces() {
        let (mut g, t) = group3();
        for s in 0..3 {
            join(&mut g, t, s, true);
        }
        for i in 0..3 {
            g.handle(Event::AddressAdded(a(200 + i)), t);
        }
        let on0: Vec<Ipv4Addr> = g.bindings().on(0).collect();
        let acts = g.handle(Event::Link { slot: 0, up: false }, t);
        assert_eq!(acts[0], Action::Publish);
        assert!(acts.contains(&Action::NomineeMoved {
            from: Some(0),
            to: Some(1)
        }));
        for addr in on0 {
            let to = g.bindings().slot_of(addr).unwrap();
            assert_ne!(to, 0);
            assert!(acts.contains(&Action::Announce { addr, slot: to }));
        }
        // Repair: the nominee stays where it is (sticky), addresses rebalance.
        let acts = g.handle(Event::Link { slot: 0, up: true }, t);
        assert!(!acts.iter().any(|x| matches!(x, Action::NomineeMoved { .. })));
        assert_eq!(g.bindings().count_on(0), 1);
        assert_eq!(g.nominee(), Some(1));
        // A repeated link event changes nothing.
        assert!(g.handle(Event::Link { slot: 0, up: true }, t).is_empty());
    }

    #[test]
    fn all_down_drops_carrier_and_unbinds_then_recovers() {
        let (mut g, t) = group3();
        join(&mut g, t, 0, true);
        g.handle(Event::AddressAdded(a(200)), t);
        let acts = g.handle(Event::Link { slot: 0, up: false }, t);
        assert!(acts.contains(&Action::Carrier(false)));
        assert_eq!(g.bindings().slot_of(a(200)), None);
        let acts = join(&mut g, t, 2, true);
        assert!(acts.contains(&Action::Carrier(true)));
        assert!(acts.contains(&Action::Announce {
            addr: a(200),
            slot: 2
        }));
        assert_eq!(g.nominee(), Some(2));
    }

    #[test]
    fn gone_member_is_deactivated_and_can_rejoin() {
        let (mut g, t) = group3();
        join(&mut g, t, 0, true);
        join(&mut g, t, 1, true);
        g.handle(Event::Gone { slot: 1 }, t);
        assert_eq!(g.active(), &[0]);
        join(&mut g, t, 1, true);
        assert_eq!(g.active(), &[0, 1]);
    }
}
