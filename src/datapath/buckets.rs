//! Sticky flow buckets: a flow hashes to one of [`NUM_BUCKETS`] buckets and
//! each bucket names a member. Membership changes move as few buckets as
//! possible, so flows on surviving members never move (unlike `hash % n`).

/// Bucket count: teamd and OVS use 256; enough for an even spread over a
/// handful of members while the table stays in one cache-friendly array.
pub const NUM_BUCKETS: usize = 256;
const BUCKET_MASK: u64 = NUM_BUCKETS as u64 - 1;

/// A member's slot number in the group (stable for the daemon's lifetime).
pub type Slot = u8;
/// Marks a bucket with no member (no active member at all).
pub const NO_SLOT: Slot = u8::MAX;

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Buckets {
    map: [Slot; NUM_BUCKETS],
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets {
            map: [NO_SLOT; NUM_BUCKETS],
        }
    }
}

impl Buckets {
    #[inline]
    pub fn lookup(&self, hash: u64) -> Slot {
        self.map[(hash & BUCKET_MASK) as usize]
    }

    pub fn owners(&self) -> &[Slot; NUM_BUCKETS] {
        &self.map
    }

    pub fn load(&self, slot: Slot) -> usize {
        self.map.iter().filter(|&&s| s == slot).count()
    }

    /// Re-assigns buckets for a new active set.
    ///
    /// Buckets of members that left go to the member deployed in their place
    /// (`replacements`: (left, deployed)), else one at a time to the
    /// least-loaded active member. Then, while some member holds two or more
    /// buckets more than another (a member joined), single buckets move from
    /// the fullest to the emptiest. No other bucket moves.
    pub fn rebalance(&mut self, active: &[Slot], replacements: &[(Slot, Slot)]) {
        if active.is_empty() {
            self.map = [NO_SLOT; NUM_BUCKETS];
            return;
        }
        let max_slot = active.iter().copied().max().unwrap_or(0) as usize;
        let mut load = vec![0usize; max_slot + 1];
        let is_active = |s: Slot| active.contains(&s);
        let mut orphans = Vec::new();
        for (i, owner) in self.map.iter_mut().enumerate() {
            if *owner != NO_SLOT && is_active(*owner) {
                load[*owner as usize] += 1;
                continue;
            }
            match replacements
                .iter()
                .find(|(left, dep)| *left == *owner && is_active(*dep))
            {
                Some(&(_, dep)) => {
                    *owner = dep;
                    load[dep as usize] += 1;
                }
                None => orphans.push(i),
            }
        }
        for i in orphans {
            let s = least_loaded(active, &load);
            self.map[i] = s;
            load[s as usize] += 1;
        }
        loop {
            let lo = least_loaded(active, &load);
            let hi = most_loaded(active, &load);
            if load[hi as usize] <= load[lo as usize] + 1 {
                break;
            }
            // Take the fullest member's last bucket: deterministic, and any
            // single bucket is as good as another for balance.
            let i = self
                .map
                .iter()
                .rposition(|&s| s == hi)
                .expect("a loaded member owns a bucket");
            self.map[i] = lo;
            load[hi as usize] -= 1;
            load[lo as usize] += 1;
        }
    }
}

fn least_loaded(active: &[Slot], load: &[usize]) -> Slot {
    *active
        .iter()
        .min_by_key(|&&s| (load[s as usize], s))
        .expect("non-empty active set")
}

fn most_loaded(active: &[Slot], load: &[usize]) -> Slot {
    *active
        .iter()
        .max_by_key(|&&s| (load[s as usize], std::cmp::Reverse(s)))
        .expect("non-empty active set")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moved(a: &Buckets, b: &Buckets) -> Vec<(Slot, Slot)> {
        a.map
            .iter()
            .zip(b.map.iter())
            .filter(|(x, y)| x != y)
            .map(|(x, y)| (*x, *y))
            .collect()
    }

    fn spread_ok(b: &Buckets, active: &[Slot]) {
        let loads: Vec<usize> = active.iter().map(|&s| b.load(s)).collect();
        let (mn, mx) = (loads.iter().min().unwrap(), loads.iter().max().unwrap());
        assert!(mx - mn <= 1, "{loads:?}");
        assert_eq!(loads.iter().sum::<usize>(), NUM_BUCKETS);
    }

    #[test]
    fn initial_fill_is_even() {
        let mut b = Buckets::default();
        b.rebalance(&[0, 1, 2], &[]);
        spread_ok(&b, &[0, 1, 2]);
    }

    #[test]
    fn failure_moves_only_the_failed_members_buckets() {
        for n in 2..=8u8 {
            let all: Vec<Slot> = (0..n).collect();
            for victim in 0..n {
                let mut b = Buckets::default();
                b.rebalance(&all, &[]);
                let before = b.clone();
                let rest: Vec<Slot> = all.iter().copied().filter(|&s| s != victim).collect();
                b.rebalance(&rest, &[]);
                for (from, _) in moved(&before, &b) {
                    assert_eq!(from, victim, "n={n}: a surviving member's bucket moved");
                }
                assert_eq!(moved(&before, &b).len(), before.load(victim));
                spread_ok(&b, &rest);
            }
        }
    }

    #[test]
    fn join_moves_the_minimum() {
        for n in 1..=7u8 {
            let old: Vec<Slot> = (0..n).collect();
            let mut b = Buckets::default();
            b.rebalance(&old, &[]);
            let before = b.clone();
            let mut new = old.clone();
            new.push(n);
            b.rebalance(&new, &[]);
            let m = moved(&before, &b);
            // Exactly the joiner's fair share moves, all of it to the joiner.
            assert_eq!(m.len(), NUM_BUCKETS / (n as usize + 1), "n={n}");
            assert!(m.iter().all(|&(_, to)| to == n));
            spread_ok(&b, &new);
        }
    }

    #[test]
    fn replacement_takes_over_the_leavers_buckets_exactly() {
        let mut b = Buckets::default();
        b.rebalance(&[0, 1], &[]);
        let before = b.clone();
        // Member 1 fails and standby 2 is deployed in its place.
        b.rebalance(&[0, 2], &[(1, 2)]);
        for (i, (x, y)) in before.map.iter().zip(b.map.iter()).enumerate() {
            if *x == 1 {
                assert_eq!(*y, 2, "bucket {i}");
            } else {
                assert_eq!(x, y);
            }
        }
    }

    #[test]
    fn failure_then_repair_restores_balance_without_touching_others() {
        let mut b = Buckets::default();
        b.rebalance(&[0, 1, 2], &[]);
        b.rebalance(&[0, 2], &[]);
        let mid = b.clone();
        b.rebalance(&[0, 1, 2], &[]);
        spread_ok(&b, &[0, 1, 2]);
        assert!(moved(&mid, &b).iter().all(|&(_, to)| to == 1));
    }

    #[test]
    fn empty_active_set_clears() {
        let mut b = Buckets::default();
        b.rebalance(&[0], &[]);
        b.rebalance(&[], &[]);
        assert!(b.owners().iter().all(|&s| s == NO_SLOT));
        b.rebalance(&[3], &[]);
        assert!(b.owners().iter().all(|&s| s == 3));
    }
}
