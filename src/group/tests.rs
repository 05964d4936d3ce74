use super::*;
use std::time::Duration;

fn group(failback: bool, standby_rge0: bool, probing: bool) -> (Group, Instant) {
    let policy = Policy {
        failback,
        flap_limit: 2,
    };
    let members = vec![
        Member::new("e1000g0").probing(probing),
        Member::new("e1000g1").probing(probing),
        Member::new("rge0").standby(standby_rge0).probing(probing),
    ];
    (Group::new("production0", policy, members), Instant::now())
}

fn group3() -> (Group, Instant) {
    group(true, false, false)
}

fn a(n: u8) -> IpAddr {
    std::net::Ipv4Addr::new(192, 0, 2, n).into()
}

fn a6(n: u16) -> IpAddr {
    std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n).into()
}

fn join(g: &mut Group, t: Instant, slot: Slot, link_up: bool) -> Vec<Action> {
    let probe = if g.members()[usize::from(slot)].probe == ProbeState::Disabled {
        ProbeState::Disabled
    } else {
        ProbeState::Unknown
    };
    g.handle(
        Event::Joined {
            slot,
            link_up,
            probe,
            mac: None,
        },
        t,
    )
}

fn probe(g: &mut Group, t: Instant, slot: Slot, state: ProbeState) -> Vec<Action> {
    g.handle(Event::Probe { slot, state }, t)
}

fn join_all(g: &mut Group, t: Instant) {
    for s in 0..3 {
        join(g, t, s, true);
    }
}

fn logs(acts: &[Action]) -> Vec<String> {
    acts.iter()
        .filter_map(|a| {
            if let Action::Notice(n) = a {
                Some(n.to_string())
            } else {
                None
            }
        })
        .collect()
}

fn flags(g: &Group, s: usize) -> (bool, bool, bool) {
    let m = &g.members()[s];
    (m.failed(), m.inactive, m.standby)
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
    assert_eq!(g.state(), GroupState::Degraded);
}

#[test]
fn three_addresses_land_on_three_members() {
    let (mut g, t) = group3();
    join_all(&mut g, t);
    for i in 0..3 {
        let acts = g.handle(Event::AddressAdded(a(200 + i)), t);
        assert!(matches!(acts[1], Action::Announce { .. }));
    }
    for s in 0..3 {
        assert_eq!(g.bindings().count_on(s), 1);
    }
    assert_eq!(g.state(), GroupState::Ok);
}

#[test]
fn link_loss_moves_addresses_nominee_and_announces() {
    let (mut g, t) = group3();
    join_all(&mut g, t);
    for i in 0..3 {
        g.handle(Event::AddressAdded(a(200 + i)), t);
    }
    let on0: Vec<IpAddr> = g.bindings().on(0).collect();
    let acts = g.handle(Event::Link { slot: 0, up: false }, t);
    assert_eq!(
        logs(&acts),
        vec![
            "The link has gone down on e1000g0",
            "e1000g0 is no longer active in group production0 (failed)"
        ]
    );
    let publish = acts.iter().position(|a| *a == Action::Publish).expect("publish");
    assert!(acts.contains(&Action::NomineeMoved {
        from: Some(0),
        to: Some(1)
    }));
    for addr in on0 {
        let to = g.bindings().slot_of(addr).unwrap();
        assert_ne!(to, 0);
        let i = acts
            .iter()
            .position(|x| *x == Action::Announce { addr, slot: to })
            .expect("announced");
        assert!(i > publish, "announce after publish");
        let logged = acts
            .iter()
            .position(|x| matches!(x, Action::Notice(Notice::Inactive { .. })))
            .expect("logged");
        assert!(logged > i, "logged once the address has moved");
    }
    // Repair: the nominee stays where it is (sticky), addresses rebalance.
    let acts = g.handle(Event::Link { slot: 0, up: true }, t);
    assert_eq!(
        logs(&acts),
        vec![
            "The link has come up on e1000g0",
            "e1000g0 is now active in group production0"
        ]
    );
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
    assert!(logs(&acts).contains(&"All IP interfaces in group production0 are now unusable".to_string()));
    assert_eq!(g.bindings().slot_of(a(200)), None);
    assert_eq!(g.state(), GroupState::Failed);
    let acts = join(&mut g, t, 2, true);
    assert!(acts.contains(&Action::Carrier(true)));
    assert!(acts.contains(&Action::Announce {
        addr: a(200),
        slot: 2
    }));
    assert!(logs(&acts)
        .contains(&"At least 1 IP interface (rge0) in group production0 is now usable".to_string()));
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

#[test]
fn standby_is_deployed_for_a_failed_member_and_goes_back_after_repair() {
    let (mut g, t) = group(true, true, false);
    join_all(&mut g, t);
    assert_eq!(g.active(), &[0, 1]);
    assert_eq!(flags(&g, 2), (false, true, true), "standby is inactive");
    let before = g.buckets().clone();
    g.handle(Event::Link { slot: 0, up: false }, t);
    assert_eq!(g.active(), &[1, 2]);
    // The standby takes exactly the failed member's buckets.
    for (x, y) in before.owners().iter().zip(g.buckets().owners()) {
        assert_eq!(*y, if *x == 0 { 2 } else { *x });
    }
    assert_eq!(flags(&g, 0), (true, false, false));
    assert_eq!(flags(&g, 2), (false, false, true));
    g.handle(Event::Link { slot: 0, up: true }, t);
    assert_eq!(g.active(), &[1, 0]);
    assert_eq!(flags(&g, 2), (false, true, true), "standby back to standby");
    assert_eq!(g.buckets().load(2), 0);
}

#[test]
fn failback_no_keeps_the_repaired_member_inactive() {
    let (mut g, t) = group(false, true, false);
    join_all(&mut g, t);
    g.handle(Event::Link { slot: 0, up: false }, t);
    g.handle(Event::Link { slot: 0, up: true }, t);
    assert_eq!(g.active(), &[1, 2]);
    assert_eq!(
        flags(&g, 0),
        (false, true, false),
        "flag i on the repaired member"
    );
    // It stands in when another member fails.
    g.handle(Event::Link { slot: 1, up: false }, t);
    assert_eq!(g.active(), &[2, 0]);
}

#[test]
fn failback_no_without_standby_still_keeps_it_inactive() {
    let (mut g, t) = group(false, false, false);
    join_all(&mut g, t);
    g.handle(Event::Link { slot: 0, up: false }, t);
    g.handle(Event::Link { slot: 0, up: true }, t);
    assert_eq!(g.active(), &[1, 2]);
    assert!(g.members()[0].inactive);
}

#[test]
fn failback_no_after_total_failure_uses_every_working_member() {
    let (mut g, t) = group(false, false, false);
    join(&mut g, t, 0, true);
    join(&mut g, t, 1, false);
    join(&mut g, t, 2, false);
    g.handle(Event::Link { slot: 0, up: false }, t);
    assert_eq!(g.state(), GroupState::Failed);
    g.handle(Event::Link { slot: 0, up: true }, t);
    assert_eq!(g.active(), &[0]);
}

#[test]
fn probe_failure_and_repair_log_the_original_messages() {
    let (mut g, t) = group(true, false, true);
    join_all(&mut g, t);
    assert_eq!(g.members()[0].state(), MemberState::Unknown);
    probe(&mut g, t, 0, ProbeState::Ok);
    assert_eq!(g.members()[0].state(), MemberState::Ok);
    let acts = probe(&mut g, t, 0, ProbeState::Failed);
    assert_eq!(
        logs(&acts)[0],
        "IP interface failure detected on e1000g0 of group production0"
    );
    assert_eq!(g.active(), &[1, 2]);
    let acts = probe(&mut g, t, 0, ProbeState::Ok);
    assert_eq!(
        logs(&acts)[0],
        "IP interface repair detected on e1000g0 of group production0"
    );
    assert_eq!(g.active(), &[1, 2, 0]);
}

#[test]
fn with_probing_link_up_alone_does_not_repair() {
    let (mut g, t) = group(true, false, true);
    join_all(&mut g, t);
    g.handle(Event::Link { slot: 0, up: false }, t);
    g.handle(Event::Link { slot: 0, up: true }, t);
    assert!(g.members()[0].failed(), "waits for the probes");
    assert_eq!(g.active(), &[1, 2]);
    probe(&mut g, t, 0, ProbeState::Ok);
    assert_eq!(g.active(), &[1, 2, 0]);
}

#[test]
fn all_failed_by_probe_with_links_up_keeps_forwarding() {
    let (mut g, t) = group(true, false, true);
    join_all(&mut g, t);
    g.handle(Event::AddressAdded(a(200)), t);
    let mut all = Vec::new();
    for s in 0..3 {
        all.extend(probe(&mut g, t, s, ProbeState::Failed));
    }
    assert_eq!(g.state(), GroupState::Failed);
    assert!(g.blackhole());
    assert_eq!(g.active(), &[2], "forwarding continues on the last active set");
    assert!(!all.contains(&Action::Carrier(false)));
    assert!(logs(&all).contains(&"All IP interfaces in group production0 are now unusable".to_string()));
    assert!(g.bindings().slot_of(a(200)).is_some());
    let acts = probe(&mut g, t, 1, ProbeState::Ok);
    assert!(!g.blackhole());
    assert_eq!(g.active(), &[1]);
    assert!(logs(&acts)
        .contains(&"At least 1 IP interface (e1000g1) in group production0 is now usable".to_string()));
}

#[test]
fn link_flaps_hold_the_repair_until_the_link_stabilizes() {
    let (mut g, t) = group3();
    join_all(&mut g, t);
    let mut now = t;
    let mut held_log = Vec::new();
    for _ in 0..3 {
        g.handle(Event::Link { slot: 0, up: false }, now);
        now += Duration::from_secs(1);
        held_log.extend(logs(&g.handle(Event::Link { slot: 0, up: true }, now)));
        now += Duration::from_secs(1);
    }
    assert!(held_log.contains(
        &"The link has come up on e1000g0 more than 2 times in the last minute; disabling repair until it stabilizes"
            .to_string()
    ));
    assert!(g.members()[0].held && g.members()[0].failed());
    assert_eq!(g.active(), &[1, 2]);
    let d = g.next_deadline().expect("a release deadline");
    assert_eq!(d, t + Duration::from_secs(1) + FLAP_WINDOW);
    g.handle(Event::Tick, d - Duration::from_millis(1));
    assert!(g.members()[0].held);
    let acts = g.handle(Event::Tick, d);
    assert!(!g.members()[0].held);
    assert!(logs(&acts).contains(&"The link on e1000g0 has stabilized; repair enabled".to_string()));
    assert_eq!(g.active(), &[1, 2, 0]);
}

#[test]
fn flap_limit_zero_disables_damping() {
    let policy = Policy {
        failback: true,
        flap_limit: 0,
    };
    let mut g = Group::new("g", policy, vec![Member::new("a"), Member::new("b")]);
    let t = Instant::now();
    join(&mut g, t, 0, true);
    join(&mut g, t, 1, true);
    for _ in 0..10 {
        g.handle(Event::Link { slot: 0, up: false }, t);
        g.handle(Event::Link { slot: 0, up: true }, t);
    }
    assert_eq!(g.active(), &[1, 0]);
    assert_eq!(g.next_deadline(), None);
}

#[test]
fn a_member_rejoining_after_failing_waits_for_its_probes() {
    let (mut g, t) = group(true, false, true);
    join_all(&mut g, t);
    g.handle(Event::Gone { slot: 0 }, t);
    g.handle(
        Event::Joined {
            slot: 0,
            link_up: true,
            probe: ProbeState::Failed,
            mac: None,
        },
        t,
    );
    assert!(g.members()[0].failed());
    assert_eq!(g.active(), &[1, 2]);
    probe(&mut g, t, 0, ProbeState::Ok);
    assert_eq!(g.active(), &[1, 2, 0]);
}

#[test]
fn online_after_offline_is_active_even_with_failback_no() {
    let (mut g, t) = group(false, false, false);
    join_all(&mut g, t);
    g.handle(
        Event::Offline {
            slot: 0,
            offline: true,
        },
        t,
    );
    assert_eq!(g.members()[0].state(), MemberState::Offline);
    assert_eq!(g.active(), &[1, 2]);
    g.handle(
        Event::Offline {
            slot: 0,
            offline: false,
        },
        t,
    );
    assert_eq!(g.active(), &[1, 2, 0]);
}

#[test]
fn members_can_be_added_and_removed_at_run_time() {
    let (mut g, t) = group3();
    join_all(&mut g, t);
    let before = g.buckets().clone();
    g.handle(Event::Removed { slot: 1 }, t);
    assert_eq!(g.active(), &[0, 2]);
    assert_eq!(g.slot_of("e1000g1"), None);
    assert_eq!(
        g.state(),
        GroupState::Ok,
        "a removed member does not degrade the group"
    );
    for (x, y) in before.owners().iter().zip(g.buckets().owners()) {
        if *x != 1 {
            assert_eq!(x, y, "only the removed member's buckets move");
        }
    }
    // The removed member's slot is free: the next member added takes it.
    let s = g.add_member(Member::new("e1000g2")).unwrap();
    assert_eq!(s, 1, "a removed member's slot is reused");
    join(&mut g, t, s, true);
    assert_eq!(g.active(), &[0, 2, 1]);
    assert_eq!(g.slot_of("e1000g2"), Some(1));
    assert_eq!(g.members().len(), 3);
}

#[test]
fn a_member_with_a_duplicate_hardware_address_is_taken_out_of_service() {
    let (mut g, t) = group(false, false, false);
    let mac = |slot: Slot, b: u8| Event::Joined {
        slot,
        link_up: true,
        probe: ProbeState::Disabled,
        mac: Some([2, 0, 0, 0, 0, b]),
    };
    g.handle(mac(0, 1), t);
    g.handle(mac(1, 2), t);
    // The later member with the same address goes, with flag h and a log line.
    let acts = g.handle(mac(2, 1), t);
    assert!(g.members()[2].dup_hwaddr);
    assert!(!g.members()[0].dup_hwaddr);
    assert_eq!(g.members()[2].state(), MemberState::Offline);
    assert_eq!(g.active(), &[0, 1]);
    assert!(
        logs(&acts)
            .iter()
            .any(|l| l.contains("rge0 has the same hardware address as e1000g0")),
        "{:?}",
        logs(&acts)
    );
    // Its address changes: back in service.
    let acts = g.handle(
        Event::HwAddr {
            slot: 2,
            mac: Some([2, 0, 0, 0, 0, 3]),
        },
        t,
    );
    assert!(!g.members()[2].dup_hwaddr);
    assert_eq!(g.active(), &[0, 1, 2]);
    assert!(logs(&acts)
        .iter()
        .any(|l| l.contains("no longer has a duplicate")));
    // The first member changes to the third's address: the first is the
    // newcomer to that address now, and goes.
    g.handle(
        Event::HwAddr {
            slot: 0,
            mac: Some([2, 0, 0, 0, 0, 3]),
        },
        t,
    );
    assert!(g.members()[0].dup_hwaddr && !g.members()[2].dup_hwaddr);
    // The holder leaves the system: the other one is back in service.
    g.handle(Event::Gone { slot: 2 }, t);
    assert!(!g.members()[0].dup_hwaddr);
    assert!(g.active().contains(&0));
}

#[test]
fn ipv6_addresses_are_bound_moved_and_announced_like_ipv4() {
    let (mut g, t) = group3();
    join_all(&mut g, t);
    let v6 = [a6(0x200), a6(0x201), a6(0x202)];
    for (i, x) in v6.iter().enumerate() {
        let acts = g.handle(Event::AddressAdded(*x), t);
        assert!(acts.contains(&Action::Publish), "{acts:?}");
        assert!(
            matches!(acts[1], Action::Announce { addr, .. } if addr == *x),
            "{acts:?}"
        );
        // Dual stack: an IPv4 address next to each; each family spreads on its own.
        g.handle(Event::AddressAdded(a(200 + i as u8)), t);
    }
    for s in 0..3 {
        assert_eq!(g.bindings().on6(s).count(), 1, "{:?}", g.bindings());
        assert_eq!(g.bindings().on4(s).count(), 1, "{:?}", g.bindings());
    }
    let lost: Vec<IpAddr> = g.bindings().on(1).collect();
    let acts = g.handle(Event::Link { slot: 1, up: false }, t);
    for x in &lost {
        let to = g.bindings().slot_of(*x).expect("rebound");
        assert_ne!(to, 1);
        assert!(
            acts.contains(&Action::Announce { addr: *x, slot: to }),
            "{acts:?}"
        );
    }
    let acts = g.handle(Event::AddressRemoved(v6[0]), t);
    assert_eq!(acts, vec![Action::Publish]);
    assert!(!g.bindings().contains(v6[0]));
    // Removing what is not bound changes nothing.
    assert!(g.handle(Event::AddressRemoved(v6[0]), t).is_empty());
}

/// Start-up is routine: the group starts Failed before its first member
/// joins, and that first join must not report a recovery (it would log at
/// warning on every clean start). A real recovery still does.
#[test]
fn first_join_is_not_a_recovery_but_a_real_one_is() {
    let (mut g, t) = group3();
    let acts = join(&mut g, t, 0, true);
    assert_ne!(g.state(), GroupState::Failed);
    assert!(
        !acts
            .iter()
            .any(|x| matches!(x, Action::Notice(Notice::Usable { .. }))),
        "{:?}",
        logs(&acts)
    );
    for a in &acts {
        if let Action::Notice(n) = a {
            assert!(
                n.level() > log::Level::Warn,
                "start-up notice at warning or above: {n}"
            );
        }
    }
    let acts = g.handle(Event::Link { slot: 0, up: false }, t);
    assert!(acts
        .iter()
        .any(|x| matches!(x, Action::Notice(Notice::AllFailed { .. }))));
    let acts = g.handle(Event::Link { slot: 0, up: true }, t);
    assert!(logs(&acts)
        .contains(&"At least 1 IP interface (e1000g0) in group production0 is now usable".to_string()));
    // Reported once: a second member joining is no second recovery.
    let acts = join(&mut g, t, 1, true);
    assert!(!acts
        .iter()
        .any(|x| matches!(x, Action::Notice(Notice::Usable { .. }))));
}
