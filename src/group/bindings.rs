//! Data address to member binding: each address answers ARP (IPv4) or
//! neighbour solicitations (IPv6) from exactly one active member, spread
//! evenly (the kernel side of the original IPMP).
//!
//! IPv4 and IPv6 addresses share one list but are spread per family: each
//! family is within one address per member on its own, as an administrator
//! expects (a dual-stack host's IPv4 addresses are not all piled on the
//! member that happens to hold fewer IPv6 ones).

use crate::datapath::buckets::Slot;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bindings {
    /// In the order the addresses were added; `None` while no member is active.
    list: Vec<(IpAddr, Option<Slot>)>,
}

impl Bindings {
    pub fn contains(&self, a: IpAddr) -> bool {
        self.list.iter().any(|(x, _)| *x == a)
    }

    pub fn iter(&self) -> impl Iterator<Item = (IpAddr, Option<Slot>)> + '_ {
        self.list.iter().copied()
    }

    pub fn slot_of(&self, a: IpAddr) -> Option<Slot> {
        self.list.iter().find(|(x, _)| *x == a).and_then(|(_, s)| *s)
    }

    /// Every address (both families) bound to `slot`.
    pub fn on(&self, slot: Slot) -> impl Iterator<Item = IpAddr> + '_ {
        self.list
            .iter()
            .filter(move |(_, s)| *s == Some(slot))
            .map(|(a, _)| *a)
    }

    /// The IPv4 addresses bound to `slot` (ARP senders, gratuitous ARP).
    pub fn on4(&self, slot: Slot) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.on(slot).filter_map(|a| match a {
            IpAddr::V4(v) => Some(v),
            IpAddr::V6(_) => None,
        })
    }

    /// The IPv6 addresses bound to `slot`.
    pub fn on6(&self, slot: Slot) -> impl Iterator<Item = Ipv6Addr> + '_ {
        self.on(slot).filter_map(|a| match a {
            IpAddr::V6(v) => Some(v),
            IpAddr::V4(_) => None,
        })
    }

    /// Addresses of both families on `slot`.
    pub fn count_on(&self, slot: Slot) -> usize {
        self.on(slot).count()
    }

    /// Addresses of `a`'s family on `slot`.
    fn count_family_on(&self, slot: Slot, v6: bool) -> usize {
        self.on(slot).filter(|a| a.is_ipv6() == v6).count()
    }

    fn least_loaded(&self, active: &[Slot], v6: bool) -> Option<Slot> {
        active
            .iter()
            .copied()
            .min_by_key(|&s| self.count_family_on(s, v6))
    }

    /// Adds an address and binds it to the active member with the fewest.
    /// Returns the member to announce from, or None (already present, or no
    /// active member).
    pub fn add(&mut self, a: IpAddr, active: &[Slot]) -> Option<Slot> {
        if self.contains(a) {
            return None;
        }
        let s = self.least_loaded(active, a.is_ipv6());
        self.list.push((a, s));
        s
    }

    pub fn remove(&mut self, a: IpAddr) -> bool {
        let before = self.list.len();
        self.list.retain(|(x, _)| *x != a);
        self.list.len() != before
    }

    /// Re-binds after the active set changed: addresses of members no longer
    /// active (and unbound ones) go to the least loaded; then addresses move
    /// from the busiest to the least busy member until all are within one,
    /// each family on its own. Returns every (address, new member) that moved.
    pub fn rebalance(&mut self, active: &[Slot]) -> Vec<(IpAddr, Slot)> {
        let mut moved = Vec::new();
        for i in 0..self.list.len() {
            let cur = self.list[i].1;
            if cur.is_some_and(|s| active.contains(&s)) {
                continue;
            }
            let to = self.least_loaded(active, self.list[i].0.is_ipv6());
            self.list[i].1 = to;
            if let Some(s) = to {
                moved.push((self.list[i].0, s));
            }
        }
        for v6 in [false, true] {
            self.even_out(active, v6, &mut moved);
        }
        moved
    }

    /// Moves addresses of one family from the busiest to the least busy
    /// member until all are within one; each move ends up in `moved` once.
    fn even_out(&mut self, active: &[Slot], v6: bool, moved: &mut Vec<(IpAddr, Slot)>) {
        let (Some(_), Some(_)) = (active.first(), self.least_loaded(active, v6)) else {
            return;
        };
        // Every move lowers the spread; the list's length bounds the moves.
        for _ in 0..=self.list.len() {
            let Some(lo) = self.least_loaded(active, v6) else {
                return;
            };
            let Some(hi) = active
                .iter()
                .copied()
                .max_by_key(|&s| self.count_family_on(s, v6))
            else {
                return;
            };
            if self.count_family_on(hi, v6) <= self.count_family_on(lo, v6) + 1 {
                return;
            }
            // Move the busiest member's most recently added address.
            let Some(i) = self
                .list
                .iter()
                .rposition(|(a, s)| *s == Some(hi) && a.is_ipv6() == v6)
            else {
                return;
            };
            self.list[i].1 = Some(lo);
            moved.retain(|(a, _)| *a != self.list[i].0);
            moved.push((self.list[i].0, lo));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(n: u8) -> IpAddr {
        Ipv4Addr::new(192, 0, 2, n).into()
    }

    fn a6(n: u16) -> IpAddr {
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n).into()
    }

    #[test]
    fn each_family_is_spread_evenly_on_its_own() {
        let mut b = Bindings::default();
        // Two IPv4 addresses, then two IPv6 ones, with two members: one of
        // each family per member (spread over both families together, the
        // IPv6 pair could sit on one member next to the other's IPv4 pair).
        for i in 0..2 {
            b.add(a(i), &[0, 1]);
        }
        for i in 0..2 {
            b.add(a6(i), &[0, 1]);
        }
        for s in [0, 1] {
            assert_eq!(b.on4(s).count(), 1, "{b:?}");
            assert_eq!(b.on6(s).count(), 1, "{b:?}");
        }
        // One member leaves: everything goes to the other; it comes back
        // and each family evens out again, each address reported once.
        let moved = b.rebalance(&[1]);
        assert_eq!(moved.len(), 2);
        assert_eq!(b.count_on(1), 4);
        let moved = b.rebalance(&[1, 0]);
        assert_eq!(moved.len(), 2, "{moved:?}");
        assert!(moved.iter().any(|(x, _)| x.is_ipv4()) && moved.iter().any(|(x, _)| x.is_ipv6()));
        for s in [0, 1] {
            assert_eq!((b.on4(s).count(), b.on6(s).count()), (1, 1), "{b:?}");
        }
        assert!(b.remove(a6(1)) && !b.contains(a6(1)) && b.contains(a6(0)));
    }

    #[test]
    fn activation_rebalances_to_within_one() {
        let mut b = Bindings::default();
        for i in 0..5 {
            b.add(a(i), &[0]);
        }
        let moved = b.rebalance(&[0, 1, 2]);
        let counts: Vec<usize> = (0..3).map(|s| b.count_on(s)).collect();
        assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1);
        // Only what had to move moved, and each is reported once.
        assert_eq!(moved.len(), 3);
    }

    #[test]
    fn no_active_member_leaves_addresses_unbound() {
        let mut b = Bindings::default();
        assert_eq!(b.add(a(1), &[]), None);
        assert!(b.contains(a(1)));
        assert_eq!(b.rebalance(&[4]), vec![(a(1), 4)]);
        assert!(b.remove(a(1)));
        assert!(!b.remove(a(1)));
    }
}
