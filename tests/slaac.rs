//! SLAAC through the group: router advertisements from a real router
//! (radvd on the lab's router, `scripts/lab.sh radvd`) reach ipmp0 through
//! the nominee, exactly once each; the kernel forms ipmp0's addresses in
//! the advertised prefix (a stable one and, with `use_tempaddr=2`, a
//! temporary one) and its default route via the router's link-local
//! address; ipmpd binds both addresses to members like any data address,
//! the router reaches them, and when the member carrying one fails the
//! address moves and the router learns the new member's MAC.
//!
//! The group starts with members and no data address at all (ready by
//! sd_notify): every IPv6 address it ends up with comes from the LAN.

mod common;

use common::daemon::{bound_member, ipmpstat, members_only_args, start_notified};
use common::{wait_until, Lab, PingResult, Proc};
use std::time::Duration;

const GROUP_IF: &str = "ipmp0";
/// The prefix the lab's radvd advertises (scripts/lab.sh).
const PREFIX: &str = "2001:db8:0:5:";
/// The router's address in it.
const ROUTER6: &str = "2001:db8:0:5::1";
/// radvd starting to listen.
const RADVD_START_TIMEOUT: Duration = Duration::from_secs(10);
/// RAs come every 3 to 4 s; addresses pass DAD about 1 s after: forming
/// them, and a few more RAs, take well under this.
const SLAAC_TIMEOUT: Duration = Duration::from_secs(30);
/// Binding, announcement, failover: each takes well under this.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(15);
/// Pings per reachability check.
const PINGS: u32 = 20;
/// RAs (beyond a baseline) to count before comparing sent and received.
const RAS_TO_COUNT: u64 = 3;
/// A pair of RA counters is taken as settled when it did not change over
/// this long (RAs are 3 s apart at least: no RA is in flight then).
const COUNTER_QUIET: Duration = Duration::from_millis(500);
/// Grace for radvd to exit.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// One IPv6 address of ipmp0 as `ip -6 -o addr` shows it.
#[derive(Debug, Clone)]
struct Addr6 {
    addr: String,
    flags: Vec<String>,
}

impl Addr6 {
    fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

/// ipmp0's global IPv6 addresses:
/// `3: ipmp0    inet6 2001:db8:0:5:x/64 scope global temporary dynamic \ valid_lft ...`.
fn global_addrs(lab: &Lab) -> Vec<Addr6> {
    let out = lab.exec_ok(
        "host",
        &[
            "ip", "-6", "-o", "addr", "show", "dev", GROUP_IF, "scope", "global",
        ],
    );
    out.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace().skip_while(|x| *x != "inet6").skip(1);
            let addr = w.next()?.split('/').next()?.to_string();
            let flags = w
                .take_while(|x| *x != "\\" && *x != "valid_lft")
                .map(str::to_string)
                .collect();
            Some(Addr6 { addr, flags })
        })
        .collect()
}

/// The router's link-local address on r0.
fn router_link_local(lab: &Lab) -> String {
    let out = lab.exec_ok(
        "router",
        &["ip", "-6", "-o", "addr", "show", "dev", "r0", "scope", "link"],
    );
    out.split_whitespace()
        .skip_while(|x| *x != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap_or_else(|| panic!("no link-local on r0: {out}"))
        .to_string()
}

/// The next hop of ipmp0's default route, if there is one.
fn default_via(lab: &Lab) -> Option<String> {
    let out = lab.exec_ok("host", &["ip", "-6", "route", "show", "default", "dev", GROUP_IF]);
    let mut w = out.split_whitespace().skip_while(|x| *x != "via");
    w.next()?;
    w.next().map(str::to_string)
}

/// The member ipmpstat -a --json shows `addr` bound to, if any.
fn bound_member_json(lab: &Lab, addr: &str) -> Option<String> {
    let (_, j, _) = ipmpstat(lab, &["-a", "--json"]);
    let groups: Vec<ipmpd::control::GroupStatus> = serde_json::from_str(&j).expect("valid JSON");
    groups
        .iter()
        .flat_map(|g| &g.addresses)
        .find(|a| a.address == addr)
        .and_then(|a| a.inbound.clone())
}

/// ping6 from ipmp0's address `src` to the router (same options as
/// `Lab::ping`).
fn ping6_from(lab: &Lab, src: &str, count: u32) -> PingResult {
    let deadline = (2 + count.div_ceil(100)).to_string();
    let count = count.to_string();
    let out = lab.exec(
        "host",
        &[
            "ping", "-6", "-n", "-I", src, "-c", &count, "-i", "0.01", "-W", "1", "-w", &deadline, ROUTER6,
        ],
    );
    PingResult::parse(&format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// The router reaches `src` both ways, every probe answered once.
fn reachable(lab: &Lab, src: &str) {
    let mut last = None;
    let ok = wait_until(SETTLE_TIMEOUT, || {
        let p = ping6_from(lab, src, PINGS);
        let clean = p.clean();
        last = Some(p);
        clean
    });
    assert!(
        ok,
        "ping6 -I {src} {ROUTER6}: {}",
        last.map(|p| p.output).unwrap_or_default()
    );
}

/// One counter of a namespace's per-interface IPv6 statistics
/// (/proc/net/dev_snmp6/IF); 0 while the interface has no IPv6.
fn snmp6(lab: &Lab, which: &str, ifname: &str, field: &str) -> u64 {
    let out = lab.exec(which, &["cat", &format!("/proc/net/dev_snmp6/{ifname}")]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(field)).then(|| w.next()?.parse().ok())?
        })
        .unwrap_or(0)
}

/// (RAs into ipmp0, RAs the router sent on r0), read in that order, so an
/// RA in flight can only make the first smaller, never larger.
fn ra_counts(lab: &Lab) -> (u64, u64) {
    let received = snmp6(lab, "host", GROUP_IF, "Icmp6InRouterAdvertisements");
    let sent = snmp6(lab, "router", "r0", "Icmp6OutRouterAdvertisements");
    (received, sent)
}

/// The RA counters once they hold still (no RA in flight), after the
/// router sent at least `min_sent`. Never more received than sent: an RA
/// delivered twice into ipmp0 fails here.
fn settled_ra_counts(lab: &Lab, min_sent: u64) -> (u64, u64) {
    let mut last = ra_counts(lab);
    let ok = wait_until(SLAAC_TIMEOUT, || {
        std::thread::sleep(COUNTER_QUIET);
        let now = ra_counts(lab);
        assert!(
            now.0 <= now.1,
            "more RAs into {GROUP_IF} than the router sent: {now:?}"
        );
        let settled = now == last && now.1 >= min_sent;
        last = now;
        settled
    });
    assert!(ok, "RA counters (into {GROUP_IF}, sent) did not settle: {last:?}");
    last
}

/// Every RA the router sent between `from` and a later settled point
/// reached ipmp0, exactly once.
fn each_ra_once_since(lab: &Lab, from: (u64, u64)) -> (u64, u64) {
    let to = settled_ra_counts(lab, from.1 + RAS_TO_COUNT);
    assert_eq!(
        to.0 - from.0,
        to.1 - from.1,
        "RAs into {GROUP_IF} vs sent by the router since {from:?}: now {to:?}"
    );
    to
}

struct Radvd {
    proc: Proc,
}

impl Radvd {
    fn start(lab: &Lab) -> Radvd {
        let dir = lab.dir.join("radvd");
        let dir_s = dir.to_string_lossy().into_owned();
        let mut proc = lab.spawn_script(&["radvd", &dir_s]);
        let log = dir.join("radvd.log");
        let up = wait_until(RADVD_START_TIMEOUT, || {
            !proc.running() || std::fs::read_to_string(&log).is_ok_and(|l| l.contains("started"))
        });
        assert!(
            up && proc.running(),
            "radvd did not start:\n{}{}{}",
            proc.stdout_text(),
            proc.stderr_text(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Radvd { proc }
    }
}

impl Drop for Radvd {
    fn drop(&mut self) {
        self.proc.stop(STOP_GRACE);
    }
}

#[test]
fn slaac_addresses_and_default_route_form_on_the_group_bound_and_moved_on_failure() {
    let lab = Lab::new("slaac");
    let daemon = start_notified(&lab, &members_only_args());
    assert!(global_addrs(&lab).is_empty(), "no IPv6 data address configured");
    // Temporary addresses too (RFC 8981), and preferred as source.
    lab.exec_ok(
        "host",
        &[
            "sysctl",
            "-q",
            "-w",
            &format!("net.ipv6.conf.{GROUP_IF}.use_tempaddr=2"),
        ],
    );
    let start = settled_ra_counts(&lab, 0);
    let _radvd = Radvd::start(&lab);

    // The stable address (flagged mngtmpaddr: temporary ones derive from
    // it) and a temporary one, both in the prefix and past DAD.
    let mut addrs = Vec::new();
    let formed = wait_until(SLAAC_TIMEOUT, || {
        addrs = global_addrs(&lab);
        let done = |a: &Addr6| a.addr.starts_with(PREFIX) && !a.has("tentative");
        addrs.iter().any(|a| done(a) && a.has("mngtmpaddr"))
            && addrs.iter().any(|a| done(a) && a.has("temporary"))
    });
    assert!(
        formed,
        "no SLAAC addresses on {GROUP_IF}: {addrs:?}\n{}",
        daemon.stderr_text()
    );
    let stable = addrs.iter().find(|a| a.has("mngtmpaddr")).unwrap().addr.clone();
    let temporary = addrs.iter().find(|a| a.has("temporary")).unwrap().addr.clone();

    // The default route via the router's link-local address.
    let router_ll = router_link_local(&lab);
    let mut via = None;
    let routed = wait_until(SLAAC_TIMEOUT, || {
        via = default_via(&lab);
        via.as_deref() == Some(router_ll.as_str())
    });
    assert!(routed, "default route via {via:?}, router is {router_ll}");

    // Both bound to members, in the table and in --json alike.
    for a in [&stable, &temporary] {
        let mut on = None;
        let bound = wait_until(SETTLE_TIMEOUT, || {
            on = bound_member(&lab, a);
            on.is_some() && on == bound_member_json(&lab, a)
        });
        assert!(
            bound,
            "{a} not bound (ipmpstat -a: {on:?}):\n{}",
            ipmpstat(&lab, &["-a"]).1
        );
    }

    // ping6 from the stable address, no duplicates; the router's
    // neighbour entry for it is the bound member's MAC.
    reachable(&lab, &stable);
    let carrier = bound_member(&lab, &stable).unwrap();
    let learnt = wait_until(SETTLE_TIMEOUT, || {
        lab.neigh_mac("router", &stable) == Some(lab.mac("host", &carrier))
    });
    assert!(
        learnt,
        "router has {:?} for {stable}, bound to {carrier}",
        lab.neigh_mac("router", &stable)
    );
    // RAs so far: each once.
    let before_cut = each_ra_once_since(&lab, start);

    // The carrying member fails: the address moves, the router learns the
    // new member's MAC (unsolicited NA), ping6 still works.
    lab.cut(&carrier);
    let mut now_on = None;
    let moved = wait_until(SETTLE_TIMEOUT, || {
        now_on = bound_member(&lab, &stable).filter(|m| *m != carrier);
        now_on.is_some()
    });
    assert!(
        moved,
        "{stable} did not leave {carrier}:\n{}",
        ipmpstat(&lab, &["-a"]).1
    );
    let now_on = now_on.unwrap();
    let relearnt = wait_until(SETTLE_TIMEOUT, || {
        lab.neigh_mac("router", &stable) == Some(lab.mac("host", &now_on))
    });
    assert!(
        relearnt,
        "router has {:?} for {stable}, now bound to {now_on}",
        lab.neigh_mac("router", &stable)
    );
    reachable(&lab, &stable);
    assert!(
        bound_member(&lab, &temporary).is_some_and(|m| m != carrier),
        "{temporary} left on the failed {carrier}:\n{}",
        ipmpstat(&lab, &["-a"]).1
    );
    // RAs after the failure (the nominee may have moved): each once. Those
    // sent while the failed member was still the nominee may be lost, so
    // the count starts from a point after the move.
    let after_cut = settled_ra_counts(&lab, before_cut.1);
    each_ra_once_since(&lab, after_cut);
    assert_eq!(
        default_via(&lab).as_deref(),
        Some(router_ll.as_str()),
        "default route lost"
    );
}
