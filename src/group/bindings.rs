//! Data address to member binding: each address answers ARP from exactly one
//! active member, spread evenly (the kernel side of the original IPMP).

use crate::datapath::buckets::Slot;
use std::net::Ipv4Addr;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bindings {
    /// In the order the addresses were added; `None` while no member is active.
    list: Vec<(Ipv4Addr, Option<Slot>)>,
}

impl Bindings {
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        self.list.iter().any(|(x, _)| *x == a)
    }

    pub fn iter(&self) -> impl Iterator<Item = (Ipv4Addr, Option<Slot>)> + '_ {
        self.list.iter().copied()
    }

    pub fn slot_of(&self, a: Ipv4Addr) -> Option<Slot> {
        self.list.iter().find(|(x, _)| *x == a).and_then(|(_, s)| *s)
    }

    pub fn on(&self, slot: Slot) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.list
            .iter()
            .filter(move |(_, s)| *s == Some(slot))
            .map(|(a, _)| *a)
    }

    pub fn count_on(&self, slot: Slot) -> usize {
        self.on(slot).count()
    }

    fn least_loaded(&self, active: &[Slot]) -> Option<Slot> {
        active.iter().copied().min_by_key(|&s| self.count_on(s))
    }

    /// Adds an address and binds it to the active member with the fewest.
    /// Returns the member to announce from, or None (already present, or no
    /// active member).
    pub fn add(&mut self, a: Ipv4Addr, active: &[Slot]) -> Option<Slot> {
        if self.contains(a) {
            return None;
        }
        let s = self.least_loaded(active);
        self.list.push((a, s));
        s
    }

    pub fn remove(&mut self, a: Ipv4Addr) -> bool {
        let before = self.list.len();
        self.list.retain(|(x, _)| *x != a);
        self.list.len() != before
    }

    /// Re-binds after the active set changed: addresses of members no longer
    /// active (and unbound ones) go to the least loaded; then addresses move
    /// from the busiest to the least busy member until all are within one.
    /// Returns every (address, new member) that moved.
    pub fn rebalance(&mut self, active: &[Slot]) -> Vec<(Ipv4Addr, Slot)> {
        let mut moved = Vec::new();
        for i in 0..self.list.len() {
            let cur = self.list[i].1;
            if cur.is_some_and(|s| active.contains(&s)) {
                continue;
            }
            let to = self.least_loaded(active);
            self.list[i].1 = to;
            if let Some(s) = to {
                moved.push((self.list[i].0, s));
            }
        }
        if active.is_empty() {
            return moved;
        }
        loop {
            let lo = self.least_loaded(active).expect("active set not empty");
            let hi = active
                .iter()
                .copied()
                .max_by_key(|&s| self.count_on(s))
                .expect("active set not empty");
            if self.count_on(hi) <= self.count_on(lo) + 1 {
                break;
            }
            // Move the busiest member's most recently added address.
            let i = self
                .list
                .iter()
                .rposition(|(_, s)| *s == Some(hi))
                .expect("busiest member has an address");
            self.list[i].1 = Some(lo);
            moved.retain(|(a, _)| *a != self.list[i].0);
            moved.push((self.list[i].0, lo));
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(192, 0, 2, n)
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
