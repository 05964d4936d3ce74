//! Model test: random sequences of member additions and removals (through
//! the reload diff), standby, offline/online, link, probe and address
//! events, driven through the group core, the slot table and the status
//! rendering, checking after every step the invariants the daemon relies
//! on. A failure prints the seed and the steps that led to it.

use super::reload::{apply_members, diff_members};
use super::slots::{SlotState, Slots};
use super::status::render;
use crate::config::{DataAddr, MemberConfig};
use crate::datapath::buckets::Slot;
use crate::detect::probe::{Method, ProbeState, Prober};
use crate::group::{self, Group, Member, Policy};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Interface names the model draws members from.
const POOL: usize = 6;
const ADDRS6: [std::net::Ipv6Addr; 2] = [
    std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x200),
    std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x200),
];
const ADDRS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(192, 0, 2, 200),
    Ipv4Addr::new(192, 0, 2, 201),
    Ipv4Addr::new(198, 51, 100, 200),
];
const SEEDS: u64 = 300;
const STEPS: usize = 200;

/// xorshift64*: deterministic, so a failing seed replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

/// From a small pool, so duplicates are common.
fn mac(rng: &mut Rng) -> Option<[u8; 6]> {
    Some([2, 0, 0, 0, 0, rng.below(4) as u8])
}

fn name(i: usize) -> String {
    format!("m{i}")
}

/// Test addresses move between reloads, so probers are rebuilt too.
fn member_cfg(rng: &mut Rng, i: usize) -> MemberConfig {
    let mut m = MemberConfig::new(&name(i));
    m.standby = rng.below(4) == 0;
    m.test_address = Some(DataAddr {
        addr: Ipv4Addr::new(203, 0, 113, (10 * (i + 1) + rng.below(2)) as u8),
        prefix_len: 24,
    });
    m
}

fn prober(m: &MemberConfig, slot: Slot) -> Option<Prober> {
    let t = m.test_address?;
    Some(Prober::new(
        Method::Icmp {
            test_addr: std::net::IpAddr::V4(t.addr),
        },
        &m.name,
        "g",
        Duration::from_secs(10),
        &[std::net::IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1))],
        u64::from(slot) + 1,
    ))
}

struct Model {
    group: Group,
    slots: Slots,
    config: Vec<MemberConfig>,
}

impl Model {
    fn new(rng: &mut Rng) -> Model {
        let config: Vec<MemberConfig> = (0..1 + rng.below(POOL)).map(|i| member_cfg(rng, i)).collect();
        let members = config
            .iter()
            .map(|m| Member::new(&m.name).standby(m.standby).probing(true))
            .collect();
        let group = Group::new("g", Policy::default(), members);
        let mut slots = Slots::default();
        for (i, m) in config.iter().enumerate() {
            slots.insert(
                i as Slot,
                SlotState {
                    cfg: m.clone(),
                    prober: prober(m, i as Slot),
                    v6: None,
                    taken: None,
                },
            );
        }
        Model { group, slots, config }
    }

    /// A configured member's slot, chosen at random.
    fn some_slot(&self, rng: &mut Rng) -> Option<Slot> {
        let m = self.config.get(rng.below(self.config.len().max(1)))?;
        self.group.slot_of(&m.name)
    }

    /// One random step; returns its description for the failure report.
    fn step(&mut self, rng: &mut Rng, now: Instant) -> String {
        let ev = match rng.below(10) {
            0 => {
                // Reload: a random non-empty subset of the pool.
                let mut new = Vec::new();
                for i in 0..POOL {
                    if rng.below(3) != 0 {
                        new.push(member_cfg(rng, i));
                    }
                }
                if new.is_empty() {
                    let i = rng.below(POOL);
                    new.push(member_cfg(rng, i));
                }
                let diff = diff_members(&self.config, &new);
                let what = format!("reload {diff:?}");
                let changes = apply_members(
                    &mut self.group,
                    &mut self.slots,
                    &diff,
                    true,
                    now,
                    &mut |m, slot| prober(m, slot),
                );
                drop(changes);
                self.config = new;
                return what;
            }
            1 => {
                let Some(slot) = self.some_slot(rng) else {
                    return "none".into();
                };
                let m = &self.group.members()[usize::from(slot)];
                if m.present {
                    group::Event::Gone { slot }
                } else {
                    group::Event::Joined {
                        slot,
                        link_up: rng.coin(),
                        probe: ProbeState::Unknown,
                        mac: mac(rng),
                    }
                }
            }
            2 | 3 => match self.some_slot(rng) {
                Some(slot) if self.group.members()[usize::from(slot)].present => {
                    group::Event::Link { slot, up: rng.coin() }
                }
                _ => return "none".into(),
            },
            4 | 5 => match self.some_slot(rng) {
                Some(slot) => group::Event::Probe {
                    slot,
                    state: [ProbeState::Ok, ProbeState::Failed, ProbeState::Unknown][rng.below(3)],
                },
                None => return "none".into(),
            },
            6 => match self.some_slot(rng) {
                Some(slot) => group::Event::Offline {
                    slot,
                    offline: rng.coin(),
                },
                None => return "none".into(),
            },
            7 => match self.some_slot(rng) {
                Some(slot) => group::Event::Standby {
                    slot,
                    standby: rng.coin(),
                },
                None => return "none".into(),
            },
            8 if rng.coin() => match self.some_slot(rng) {
                Some(slot) => group::Event::HwAddr { slot, mac: mac(rng) },
                None => return "none".into(),
            },
            8 => {
                let a = if rng.coin() {
                    ADDRS[rng.below(ADDRS.len())].into()
                } else {
                    ADDRS6[rng.below(ADDRS6.len())].into()
                };
                if rng.coin() {
                    group::Event::AddressAdded(a)
                } else {
                    group::Event::AddressRemoved(a)
                }
            }
            _ => group::Event::Tick,
        };
        let what = format!("{ev:?}");
        let _ = self.group.handle(ev, now);
        what
    }

    /// Member names, so a slot reused within a step counts as a new member.
    fn names(&self, slots: &[Slot]) -> Vec<Option<String>> {
        slots
            .iter()
            .map(|&s| self.group.members().get(usize::from(s)).map(|m| m.name.clone()))
            .collect()
    }

    fn check(&self, before: &[Option<String>], was_active: &[Option<String>]) -> Result<(), String> {
        let g = &self.group;
        let active = g.active();
        // Every configured member has exactly one live slot, and the slot
        // table agrees with the group about who is in it.
        for m in &self.config {
            let slot = g.slot_of(&m.name).ok_or(format!("{} has no slot", m.name))?;
            let st = self
                .slots
                .get(slot)
                .ok_or(format!("slot {slot} of {} is empty", m.name))?;
            if st.cfg != *m {
                return Err(format!("slot {slot} holds {:?}, configured {m:?}", st.cfg));
            }
        }
        let live = g.members().iter().filter(|m| !m.removed).count();
        if live != self.config.len() {
            return Err(format!("{live} live slots for {} members", self.config.len()));
        }
        // No two members in service share a hardware address (flag h).
        let in_service: Vec<&Member> = g
            .members()
            .iter()
            .filter(|m| m.present && !m.removed && !m.out_of_service())
            .collect();
        for (i, a) in in_service.iter().enumerate() {
            if let Some(b) = in_service[..i].iter().find(|b| b.mac.is_some() && b.mac == a.mac) {
                return Err(format!(
                    "{} and {} in service with one hardware address",
                    a.name, b.name
                ));
            }
        }
        // Each data address bound to an active member (or none while none is).
        for (a, s) in g.bindings().iter() {
            match s {
                Some(s) if !active.contains(&s) => return Err(format!("{a} bound to inactive slot {s}")),
                None if !active.is_empty() => return Err(format!("{a} unbound with members active")),
                _ => {}
            }
        }
        // One nominee, an active member, whenever any is active.
        match g.nominee() {
            Some(n) if !active.contains(&n) => return Err(format!("nominee {n} not active")),
            None if !active.is_empty() => return Err("no nominee".into()),
            _ => {}
        }
        for &s in active {
            if g.members()[usize::from(s)].removed {
                return Err(format!("removed slot {s} is active"));
            }
        }
        // Buckets: all on active members; a bucket moves only away from a
        // member that left the active set, or to one that joined it.
        let owners = g.buckets().owners();
        let now_active = self.names(active);
        let after = self.names(owners);
        for (i, ((old, new), &slot)) in before.iter().zip(&after).zip(owners.iter()).enumerate() {
            if !active.is_empty() && !active.contains(&slot) {
                return Err(format!("bucket {i} on inactive slot {slot}"));
            }
            if old != new && now_active.contains(old) && was_active.contains(new) {
                return Err(format!("bucket {i} moved from {old:?} (still active) to {new:?} (not new); active {was_active:?} -> {now_active:?}"));
            }
        }
        // Status: one row per configured member, naming its own test address.
        let status = render(g, "ipmp0", &self.slots, None, false);
        // Flag M (IPv6 multicast nominee) exactly where m is, and only
        // while IPv6 is on on the group interface.
        let status6 = render(g, "ipmp0", &self.slots, None, true);
        for (v4, v6) in status.members.iter().zip(&status6.members) {
            let (f4, f6): (Vec<char>, Vec<char>) = (v4.flags.chars().collect(), v6.flags.chars().collect());
            if f4.len() != 7 || f6.len() != 7 || f4[4] != '-' || (f6[4] == 'M') != (f6[2] == 'm') {
                return Err(format!(
                    "{}: flags {:?} / with IPv6 {:?}",
                    v4.name, v4.flags, v6.flags
                ));
            }
        }
        if status.members.len() != self.config.len() {
            return Err(format!(
                "{} status rows for {} members",
                status.members.len(),
                self.config.len()
            ));
        }
        for row in &status.members {
            let m = self
                .config
                .iter()
                .find(|m| m.name == row.name)
                .ok_or(format!("status row for unknown member {}", row.name))?;
            let want = m.test_address.map(|t| t.addr.to_string());
            if row.test_address != want {
                return Err(format!(
                    "row {} shows test address {:?}, configured {want:?}",
                    row.name, row.test_address
                ));
            }
        }
        for a in &status.addresses {
            if let Some(m) = &a.inbound {
                if !self.config.iter().any(|c| &c.name == m) {
                    return Err(format!("{} inbound on unknown member {m}", a.address));
                }
            }
        }
        Ok(())
    }
}

#[test]
fn random_event_sequences_keep_the_invariants() {
    let t0 = Instant::now();
    for seed in 1..=SEEDS {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut model = Model::new(&mut rng);
        let mut trail = Vec::new();
        for step in 0..STEPS {
            let before = model.names(model.group.buckets().owners());
            let was_active = model.names(model.group.active());
            let now = t0 + Duration::from_millis(step as u64 * 700);
            trail.push(model.step(&mut rng, now));
            if let Err(e) = model.check(&before, &was_active) {
                let last: Vec<&String> = trail.iter().rev().take(12).rev().collect();
                panic!("seed {seed}, step {step}: {e}\nlast steps:\n{last:#?}");
            }
        }
    }
}

#[test]
fn slots_are_reused_across_many_reloads() {
    let mut rng = Rng(7);
    let mut model = Model::new(&mut rng);
    let now = Instant::now();
    for round in 0..600 {
        let new: Vec<MemberConfig> = if round % 2 == 0 {
            vec![member_cfg(&mut rng, 0)]
        } else {
            (0..POOL).map(|i| member_cfg(&mut rng, i)).collect()
        };
        let diff = diff_members(&model.config, &new);
        let _ = apply_members(
            &mut model.group,
            &mut model.slots,
            &diff,
            true,
            now,
            &mut |m, slot| prober(m, slot),
        );
        model.config = new;
    }
    assert!(
        model.group.members().len() <= POOL,
        "{} slots",
        model.group.members().len()
    );
}
