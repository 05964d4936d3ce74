//! DHCPv6 on the group interface: ISC `dhclient -6` against a real server
//! (dnsmasq on the lab's router, `scripts/lab.sh dhcp6-server`).
//!
//! It needs nothing of its own in ipmpd: the client talks from ipmp0's
//! link-local (bound to a member like any address), the server answers it
//! unicast after resolving that link-local by neighbour discovery, which the
//! bound member answers with its own MAC. The client's identity (its DUID,
//! made from ipmp0's MAC) never changes, so the lease survives the failure
//! of the member carrying it. As for DHCPv4, the client runs with a script
//! from tests/tools/ and its files in the lab's temp dir.

mod common;

use common::daemon::{addrs_on, bound_member, ipmpstat, listed, members_only_args, start_notified};
use common::dhcp::{client_log, logged, DhcpServer, ReplyCapture};
use common::{wait_until, Lab};
use std::path::Path;
use std::time::Duration;

const GROUP_IF: &str = "ipmp0";
/// The link-local finishes DAD and the first lease comes within this.
const LEASE_TIMEOUT: Duration = Duration::from_secs(30);
/// dnsmasq's DHCPv6 T1 is half the lab's 2-minute lease.
const RENEW_TIMEOUT: Duration = Duration::from_secs(90);
/// Binding, announcement, failover, release: each takes well under this.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(15);
const CLIENT_EXIT: Duration = Duration::from_secs(10);
const PINGS: u32 = 20;
/// The prefix length the client puts on its address: the server's subnet
/// is on-link (dhclient's default is a /128).
const PREFIX_LEN: &str = "64";

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Global IPv6 addresses on the group interface.
fn group_addrs6(lab: &Lab) -> Vec<String> {
    addrs_on(lab, GROUP_IF, "-6", &["scope", "global"])
}

/// The router reaches `addr` with no loss and no duplicate, and its
/// neighbour entry for it is the MAC of the member ipmpd bound it to
/// (other than `not`); returns that member.
fn reachable_through_bound_member(lab: &Lab, addr: &str, not: Option<&str>) -> String {
    let mut member = None;
    let mut last = None;
    let ok = wait_until(SETTLE_TIMEOUT, || {
        member = bound_member(lab, addr).filter(|m| Some(m.as_str()) != not);
        let p = lab.ping("router", addr, PINGS);
        let clean = p.clean();
        last = Some(p.output);
        clean
            && member
                .as_deref()
                .is_some_and(|m| lab.neigh_mac("router", addr) == Some(lab.mac("host", m)))
    });
    assert!(
        ok,
        "{addr}: bound to {member:?} (not {not:?}), router has {:?}, ping: {}",
        lab.neigh_mac("router", addr),
        last.unwrap_or_default()
    );
    member.unwrap()
}

/// dhclient -6: lease, failover, renewal at T1 with the same lease,
/// release; every server reply reached ipmp0 exactly once.
#[test]
fn dhclient6_lease_survives_failover_renews_and_releases() {
    let lab = Lab::new("dhcp6");
    let _daemon = start_notified(&lab, &members_only_args());
    // The client talks from the link-local: it must have passed DAD.
    let ll_ready = wait_until(LEASE_TIMEOUT, || {
        let out = lab.exec_ok(
            "host",
            &[
                "ip",
                "-6",
                "-o",
                "addr",
                "show",
                "dev",
                GROUP_IF,
                "scope",
                "link",
                "-tentative",
            ],
        );
        !out.trim().is_empty()
    });
    assert!(ll_ready, "{GROUP_IF} has no usable link-local");
    let srv = DhcpServer::start_v6(&lab);
    let cap = ReplyCapture::start_v6(&lab, GROUP_IF);
    let work = lab.dir.join("client6");
    std::fs::create_dir_all(&work).unwrap();
    let log = work.join("script.log");
    let conf = work.join("dhclient.conf");
    std::fs::write(&conf, "").unwrap(); // defaults; never the host's /etc/dhcp
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/dhclient6-script");
    let args: Vec<String> = vec![
        "-6".into(),
        "--address-prefix-len".into(),
        PREFIX_LEN.into(),
        "-cf".into(),
        path(&conf),
        "-sf".into(),
        path(&script),
        "-lf".into(),
        path(&work.join("dhclient6.leases")),
        "-pf".into(),
        path(&work.join("dhclient6.pid")),
        "-e".into(),
        format!("DHCP_TEST_LOG={}", path(&log)),
    ];
    let run = |extra: &[&str]| -> common::Proc {
        let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
        a.extend(extra);
        a.push(GROUP_IF);
        lab.spawn("host", "dhclient", &a)
    };

    let mut client = run(&["-d", "-v"]);
    let mut addr = None;
    let leased = wait_until(LEASE_TIMEOUT, || {
        addr = srv
            .leases_v6()
            .into_iter()
            .find(|a| group_addrs6(&lab).contains(a));
        addr.is_some()
    });
    assert!(
        leased,
        "no DHCPv6 lease reached {GROUP_IF}\nclient: {}{}\n{}",
        client_log(&log),
        client.stderr_text(),
        srv.describe()
    );
    let addr = addr.unwrap();
    logged(&log, &format!("BOUND6 {addr}"), SETTLE_TIMEOUT);
    let carrier = reachable_through_bound_member(&lab, &addr, None);

    // The member carrying the lease fails: the address moves, the router's
    // neighbour entry follows (unsolicited NA) and it stays reachable.
    lab.cut(&carrier);
    reachable_through_bound_member(&lab, &addr, Some(&carrier));

    // Renewal at T1, through whichever members carry the link-local and
    // the address now: the same lease, one client.
    logged(&log, &format!("RENEW6 {addr}"), RENEW_TIMEOUT);
    assert_eq!(srv.leases_v6(), vec![addr.clone()], "{}", srv.describe());
    assert!(client.running(), "dhclient exited: {}", client.stderr_text());

    // Release: the client gives the lease back and removes the address;
    // ipmpd unbinds it.
    client.stop(CLIENT_EXIT); // SIGTERM: no release of its own
    let mut release = run(&["-r", "-v"]);
    let st = release.wait_timeout(CLIENT_EXIT);
    assert!(
        st.is_some_and(|s| s.success()),
        "dhclient -6 -r: {st:?} {}",
        release.stderr_text()
    );
    let gone = wait_until(SETTLE_TIMEOUT, || {
        srv.leases_v6().is_empty() && !group_addrs6(&lab).contains(&addr) && !listed(&lab, &addr)
    });
    assert!(
        gone,
        "{addr} still leased, on {GROUP_IF} ({:?}) or bound ({})\n{}",
        group_addrs6(&lab),
        ipmpstat(&lab, &["-a"]).1,
        srv.describe()
    );
    assert_eq!(srv.count_all("DHCPRELEASE"), 1, "{}", srv.describe());

    // Every ADVERTISE and REPLY the server sent reached ipmp0 once: one
    // reply to the REQUEST, the RENEW and the RELEASE each (dnsmasq logs
    // the last as DHCPRELEASE only).
    let advertised = srv.count_all("DHCPADVERTISE");
    let replied = srv.count_all("DHCPREPLY") + srv.count_all("DHCPRELEASE");
    let count = |kinds: &[String], k: &str| kinds.iter().filter(|x| *x == k).count();
    let (kinds, text) = cap.finish(|k| count(k, "advertise") >= advertised && count(k, "reply") >= replied);
    assert!(advertised >= 1 && replied >= 3, "{}", srv.describe());
    assert_eq!(
        (count(&kinds, "advertise"), count(&kinds, "reply")),
        (advertised, replied),
        "(ADVERTISE, REPLY) into {GROUP_IF} vs sent by the server\n{text}\n{}",
        srv.describe()
    );
}
