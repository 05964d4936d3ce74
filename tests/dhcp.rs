//! DHCPv4 on the group interface, with the clients users run, against a
//! real server (dnsmasq on the lab's router, `scripts/lab.sh dhcp-server`).
//!
//! The group starts with members and no data address (ready by sd_notify),
//! the client leases an address for ipmp0 (its MAC as chaddr), ipmpd binds
//! and announces it; the member carrying it fails and the address stays
//! reachable; the lease is renewed (same address, one client in the
//! server's lease file), rebound by broadcast when the server is out of
//! unicast reach (both clients), and released (unbound). The server answers chaddr,
//! ipmp0's own MAC, which no switch has learnt: every member receives a
//! flooded copy, and each reply must reach ipmp0 exactly once.
//!
//! The clients run with the scripts in tests/tools/ and their lease and
//! pid files in the lab's temp dir: the distributions' scripts would
//! rewrite the machine's /etc/resolv.conf and hostname, and DHCP must run
//! on nothing but the lab's interface.
//!
//! systemd-networkd (present on some machines) is not run here: it is the
//! system's network daemon, one instance per machine, owning every link it
//! matches through its D-Bus name and /run/systemd/netif; a second instance
//! for one namespace is not something it supports. dhcpcd is installable
//! (Debian's dhcpcd-base) but not in the lab's tests yet.

mod common;

use common::daemon::{addrs_on, bound_member, ipmpstat, listed, members_only_args, start_notified};
use common::dhcp::{client_log, logged, DhcpServer, Lease, ReplyCapture};
use common::{wait_until, Lab};
use std::path::{Path, PathBuf};
use std::time::Duration;

const GROUP_IF: &str = "ipmp0";
/// A client's first lease (the server answers at once).
const LEASE_TIMEOUT: Duration = Duration::from_secs(30);
/// The lab server's T1 is 20 s (scripts/lab.sh): a renewal comes well
/// within this.
const RENEW_TIMEOUT: Duration = Duration::from_secs(60);
/// Binding, announcement, failover, release: each takes well under this.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(15);
/// The lab server's T2 is 40 s (scripts/lab.sh): a client that could not
/// renew rebinds well within this.
const REBIND_TIMEOUT: Duration = Duration::from_secs(90);
/// tc's verdict for a dropped frame (TC_ACT_SHOT): what a direct-action
/// filter returns.
const TC_ACT_SHOT: &str = "2";
/// How long a read of the lease file waits for dnsmasq's rewrite.
const LEASE_FILE_SETTLE: Duration = Duration::from_secs(2);
/// Grace for a client to exit.
const CLIENT_EXIT: Duration = Duration::from_secs(10);
/// Pings per reachability check.
const PINGS: u32 = 20;

fn tool(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tools")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// IPv4 addresses on the group interface.
fn group_addrs(lab: &Lab) -> Vec<String> {
    addrs_on(lab, GROUP_IF, "-4", &[])
}

/// The server leased exactly one address, to ipmp0's MAC, and ipmp0 has it.
fn lease_obtained(lab: &Lab, srv: &DhcpServer, gmac: &[u8; 6], log: &Path) -> String {
    let mut addr = None;
    let ok = wait_until(LEASE_TIMEOUT, || {
        addr = srv
            .leases()
            .iter()
            .find(|l| l.mac == *gmac)
            .map(|l| l.addr.clone())
            .filter(|a| group_addrs(lab).contains(a));
        addr.is_some()
    });
    assert!(
        ok,
        "no lease reached {GROUP_IF}\nclient: {}\n{}",
        client_log(log),
        srv.describe()
    );
    let leases = settled_leases(srv);
    assert_eq!(leases.len(), 1, "one client: {leases:?}");
    addr.unwrap()
}

/// The server's lease file once it holds an entry, or as it is after
/// [`LEASE_FILE_SETTLE`]: dnsmasq logs an ACK before it rewrites the file
/// (truncate, then write), so a read right after the log line can find it
/// empty.
fn settled_leases(srv: &DhcpServer) -> Vec<Lease> {
    wait_until(LEASE_FILE_SETTLE, || !srv.leases().is_empty());
    srv.leases()
}

/// The server's lease file holds one lease: `addr`, for ipmp0's MAC.
fn one_lease(srv: &DhcpServer, gmac: &[u8; 6], addr: &str) -> Lease {
    let leases = settled_leases(srv);
    assert_eq!(leases.len(), 1, "one client: {leases:?}");
    assert_eq!((leases[0].mac, leases[0].addr.as_str()), (*gmac, addr));
    leases[0].clone()
}

/// busybox udhcpc on the group interface in the foreground (-f), exiting
/// if it gets no lease (-n); its script's log (returned) through the
/// environment udhcpc passes on.
fn spawn_udhcpc(lab: &Lab, work: &Path) -> (common::Proc, PathBuf) {
    let log = work.join("script.log");
    let log_env = format!("DHCP_TEST_LOG={}", path(&log));
    let pid = path(&work.join("udhcpc.pid"));
    let script = tool("udhcpc-script");
    let client = lab.spawn(
        "host",
        "env",
        &[
            &log_env, "udhcpc", "-f", "-n", "-i", GROUP_IF, "-s", &script, "-p", &pid,
        ],
    );
    (client, log)
}

/// ipmpd bound `addr` to a member and announced it there (the router's
/// neighbour entry is that member's MAC); the router reaches it.
fn bound_and_reachable(lab: &Lab, addr: &str) -> String {
    let mut member = None;
    let ok = wait_until(SETTLE_TIMEOUT, || {
        member = bound_member(lab, addr);
        member
            .as_deref()
            .is_some_and(|m| lab.neigh_mac("router", addr) == Some(lab.mac("host", m)))
    });
    assert!(
        ok,
        "{addr} not bound and announced (bound to {member:?}, router has {:?})",
        lab.neigh_mac("router", addr)
    );
    let p = lab.ping("router", addr, PINGS);
    assert!(p.clean(), "router -> {addr}: {}", p.output);
    member.unwrap()
}

/// Cuts the carrier of the member carrying `addr`; the address moves and
/// the router still reaches it.
fn fail_over(lab: &Lab, addr: &str, carrier: &str) -> String {
    lab.cut(carrier);
    let mut now_on = None;
    let moved = wait_until(SETTLE_TIMEOUT, || {
        now_on = bound_member(lab, addr).filter(|m| m != carrier);
        now_on.is_some()
    });
    assert!(moved, "{addr} did not leave {carrier}");
    let mut last = None;
    let reached = wait_until(SETTLE_TIMEOUT, || {
        let p = lab.ping("router", addr, PINGS);
        let clean = p.clean();
        last = Some(p);
        clean
    });
    assert!(
        reached,
        "router -> {addr} after {carrier} failed: {}",
        last.map(|p| p.output).unwrap_or_default()
    );
    now_on.unwrap()
}

/// The lease is over: not in the server's lease file, not on ipmp0, not
/// bound by ipmpd.
fn released(lab: &Lab, srv: &DhcpServer, gmac: &[u8; 6], addr: &str) {
    let ok = wait_until(SETTLE_TIMEOUT, || {
        srv.leases().iter().all(|l| l.addr != addr)
            && !group_addrs(lab).iter().any(|a| a == addr)
            && !listed(lab, addr)
    });
    assert!(
        ok,
        "{addr} still leased, on {GROUP_IF} ({:?}) or bound ({})\n{}",
        group_addrs(lab),
        ipmpstat(lab, &["-a"]).1,
        srv.describe()
    );
    assert_eq!(srv.count("DHCPRELEASE", gmac), 1, "{}", srv.describe());
}

/// Every OFFER and ACK the server sent reached ipmp0 exactly once, and
/// they came as unicast to ipmp0's own MAC.
fn each_reply_delivered_once(srv: &DhcpServer, cap: ReplyCapture, gmac: &[u8; 6]) {
    let offers = srv.count("DHCPOFFER", gmac);
    let acks = srv.count("DHCPACK", gmac);
    let count = |kinds: &[String], k: &str| kinds.iter().filter(|x| *x == k).count();
    // The last reply may still be on its way into the capture.
    let (kinds, text) = cap.finish(|k| count(k, "Offer") >= offers && count(k, "ACK") >= acks);
    let seen = |k: &str| count(&kinds, k);
    assert!(offers >= 1 && acks >= 1, "{}", srv.describe());
    assert_eq!(
        (seen("Offer"), seen("ACK")),
        (offers, acks),
        "(OFFER, ACK) into {GROUP_IF} vs sent by the server\n{text}\n{}",
        srv.describe()
    );
    assert!(
        text.contains(&format!("> {}", common::fmt_mac(gmac))),
        "no reply was unicast to {GROUP_IF}'s MAC:\n{text}"
    );
}

struct Setup {
    lab: Lab,
    _daemon: common::Proc,
    srv: DhcpServer,
    gmac: [u8; 6],
    work: PathBuf,
}

/// A lab, the group with no data address (ready by sd_notify), the DHCP
/// server, and a directory for the client's files.
fn setup(tag: &str) -> Setup {
    let lab = Lab::new(tag);
    let daemon = start_notified(&lab, &members_only_args());
    assert!(group_addrs(&lab).is_empty(), "no data address configured");
    let srv = DhcpServer::start(&lab);
    let gmac = lab.mac("host", GROUP_IF);
    let work = lab.dir.join("client");
    std::fs::create_dir_all(&work).unwrap();
    Setup {
        lab,
        _daemon: daemon,
        srv,
        gmac,
        work,
    }
}

/// ISC dhclient: lease, failover, renewal (a new client instance from the
/// lease file: INIT-REBOOT, answered to ipmp0's MAC through the new
/// nominee; then RENEWING at T1), release with `dhclient -r`.
#[test]
fn dhclient_lease_survives_failover_renews_and_releases() {
    let Setup {
        lab,
        _daemon,
        srv,
        gmac,
        work,
    } = setup("dhcpisc");
    let log = work.join("script.log");
    let conf = work.join("dhclient.conf");
    std::fs::write(&conf, "").unwrap(); // defaults; never the host's /etc/dhcp
    let args: Vec<String> = vec![
        "-cf".into(),
        path(&conf),
        "-sf".into(),
        tool("dhclient-script"),
        "-lf".into(),
        path(&work.join("dhclient.leases")),
        "-pf".into(),
        path(&work.join("dhclient.pid")),
        "-e".into(),
        format!("DHCP_TEST_LOG={}", path(&log)),
    ];
    let run = |extra: &[&str]| -> common::Proc {
        let mut a: Vec<&str> = extra.to_vec();
        a.extend(args.iter().map(String::as_str));
        a.push(GROUP_IF);
        lab.spawn("host", "dhclient", &a)
    };
    let cap = ReplyCapture::start(&lab, GROUP_IF);

    let mut client = run(&["-d", "-1", "-v"]);
    let addr = lease_obtained(&lab, &srv, &gmac, &log);
    logged(&log, &format!("BOUND {addr}"), SETTLE_TIMEOUT);
    let carrier = bound_and_reachable(&lab, &addr);
    fail_over(&lab, &addr, &carrier);

    // A client restarted after the failover asks for its lease again.
    client.stop(CLIENT_EXIT); // SIGTERM: dhclient exits without releasing
    std::fs::write(&log, "").unwrap(); // what follows is the new client's
    let mut client = run(&["-d", "-1", "-v"]);
    logged(&log, &format!("REBOOT {addr}"), LEASE_TIMEOUT);
    // And renews it at T1, unicast from the leased address.
    logged(&log, &format!("RENEW {addr}"), RENEW_TIMEOUT);
    one_lease(&srv, &gmac, &addr);
    assert!(client.running(), "dhclient exited: {}", client.stderr_text());

    // Release: gives the lease back (and signals the client named in the
    // pid file, which does not always exit at once: stopped below, without
    // a release of its own, as SIGTERM does).
    let mut release = run(&["-r", "-v"]);
    let st = release.wait_timeout(CLIENT_EXIT);
    assert!(
        st.is_some_and(|s| s.success()),
        "dhclient -r: {st:?} {}",
        release.stderr_text()
    );
    client.stop(CLIENT_EXIT);
    released(&lab, &srv, &gmac, &addr);
    each_reply_delivered_once(&srv, cap, &gmac);
}

/// Drops what reaches the router addressed to the server's own address on
/// the DHCP server port: unicast requests (RENEWING) go unanswered, while
/// broadcast ones (DISCOVER, REBINDING) still get through. A classic BPF
/// program from tcpdump's compiler in a direct-action tc filter on r0's
/// ingress (whose match verdict becomes TC_ACT_SHOT, its miss 0: pass).
fn block_unicast_to_server(lab: &Lab) {
    let filter = format!("ip dst {} and udp dst port 67", common::ROUTER_IP);
    let code = lab.exec_ok("router", &["tcpdump", "-ddd", "-y", "EN10MB", &filter]);
    let code: Vec<String> = code
        .lines()
        .map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            // BPF_RET|BPF_K (6) with a nonzero value: the match.
            ["6", "0", "0", k] if k != "0" => format!("6 0 0 {TC_ACT_SHOT}"),
            _ => l.trim().to_string(),
        })
        .collect();
    lab.exec_ok("router", &["tc", "qdisc", "add", "dev", "r0", "clsact"]);
    lab.exec_ok(
        "router",
        &[
            "tc",
            "filter",
            "add",
            "dev",
            "r0",
            "ingress",
            "bpf",
            "da",
            "bytecode",
            &code.join(","),
        ],
    );
}

/// ISC dhclient in REBINDING: the server is out of the client's unicast
/// reach (a filter on the router drops requests to its address), so the
/// RENEWING requests at T1 go unanswered; at T2 the client broadcasts its
/// REQUEST, which goes out through the group, and the server's ACK
/// (unicast to the leased address, at a member's MAC) reaches it: the
/// lease is extended, same address, same client, after the member that
/// carried it failed.
#[test]
fn dhclient_rebinds_by_broadcast_through_the_group_when_renewals_go_unanswered() {
    let Setup {
        lab,
        _daemon,
        srv,
        gmac,
        work,
    } = setup("dhcprebind");
    let log = work.join("script.log");
    let conf = work.join("dhclient.conf");
    std::fs::write(&conf, "").unwrap(); // defaults; never the host's /etc/dhcp
    let cap = ReplyCapture::start(&lab, GROUP_IF);
    let conf_s = path(&conf);
    let script = tool("dhclient-script");
    let leases_s = path(&work.join("dhclient.leases"));
    let pid_s = path(&work.join("dhclient.pid"));
    let env = format!("DHCP_TEST_LOG={}", path(&log));
    let mut client = lab.spawn(
        "host",
        "dhclient",
        &[
            "-d", "-1", "-v", "-cf", &conf_s, "-sf", &script, "-lf", &leases_s, "-pf", &pid_s, "-e", &env,
            GROUP_IF,
        ],
    );
    let addr = lease_obtained(&lab, &srv, &gmac, &log);
    logged(&log, &format!("BOUND {addr}"), SETTLE_TIMEOUT);
    let first = srv.leases()[0].expiry;
    let carrier = bound_and_reachable(&lab, &addr);
    fail_over(&lab, &addr, &carrier);

    // Unicast to the server now goes nowhere (before T1: the lab's T1 is
    // 20 s and the steps above take a few seconds).
    let seen = client.stderr_text().len();
    block_unicast_to_server(&lab);
    let server = common::ROUTER_IP;
    // dhclient -v: "DHCPREQUEST for A on ipmp0 to D port 67", "DHCPACK of
    // A from S". dhclient keeps the state RENEWING when it broadcasts past
    // T2, so its script hears "RENEW" for a rebinding as well.
    let ack = format!("DHCPACK of {addr} from {server}");
    let since_block = || client.stderr_text().get(seen..).unwrap_or_default().to_string();
    let extended = wait_until(REBIND_TIMEOUT, || since_block().lines().any(|l| l == ack));
    let text = since_block();
    assert!(
        extended,
        "no ACK after the server went out of unicast reach:\n{text}"
    );
    let requests: Vec<&str> = text
        .lines()
        .take_while(|l| *l != ack)
        .filter(|l| l.starts_with(&format!("DHCPREQUEST for {addr} on {GROUP_IF} to ")))
        .collect();
    let unicast = format!("DHCPREQUEST for {addr} on {GROUP_IF} to {server} port 67");
    let broadcast = format!("DHCPREQUEST for {addr} on {GROUP_IF} to 255.255.255.255 port 67");
    assert!(
        requests.first() == Some(&unicast.as_str()) && requests.last() == Some(&broadcast.as_str()),
        "not RENEWING (unicast, unanswered) then REBINDING (broadcast, answered):\n{text}"
    );
    logged(&log, &format!("RENEW {addr}"), SETTLE_TIMEOUT);
    let lease = one_lease(&srv, &gmac, &addr);
    assert!(
        lease.expiry > first,
        "the lease was not extended ({first} -> {})\n{}",
        lease.expiry,
        srv.describe()
    );
    assert!(group_addrs(&lab).contains(&addr), "{addr} left {GROUP_IF}");
    assert!(client.running(), "dhclient exited: {}", client.stderr_text());

    // The server in reach again: the address is still bound and reached.
    lab.exec_ok("router", &["tc", "qdisc", "del", "dev", "r0", "clsact"]);
    bound_and_reachable(&lab, &addr);
    client.stop(CLIENT_EXIT);
    each_reply_delivered_once(&srv, cap, &gmac);
}

/// busybox udhcpc: lease, failover, renewal (SIGUSR1: RENEWING), release
/// (SIGUSR2).
#[test]
fn udhcpc_lease_survives_failover_renews_and_releases() {
    let Setup {
        lab,
        _daemon,
        srv,
        gmac,
        work,
    } = setup("dhcpudh");
    let cap = ReplyCapture::start(&lab, GROUP_IF);
    let (mut client, log) = spawn_udhcpc(&lab, &work);
    let addr = lease_obtained(&lab, &srv, &gmac, &log);
    logged(&log, &format!("bound {addr}"), SETTLE_TIMEOUT);
    let carrier = bound_and_reachable(&lab, &addr);
    fail_over(&lab, &addr, &carrier);

    client.signal(libc::SIGUSR1); // renew now
    logged(&log, &format!("renew {addr}"), RENEW_TIMEOUT);
    one_lease(&srv, &gmac, &addr);

    client.signal(libc::SIGUSR2); // release
    released(&lab, &srv, &gmac, &addr);
    assert!(client.running(), "udhcpc exited: {}", client.stderr_text());
    client.stop(CLIENT_EXIT);
    each_reply_delivered_once(&srv, cap, &gmac);
}

/// busybox udhcpc in REBINDING: with the server out of unicast reach, a
/// renewal (SIGUSR1) goes unanswered; udhcpc then broadcasts its request,
/// which leaves through the group, and the server's ACK extends the lease.
#[test]
fn udhcpc_rebinds_by_broadcast_through_the_group_when_its_renewal_goes_unanswered() {
    let Setup {
        lab,
        _daemon,
        srv,
        gmac,
        work,
    } = setup("udhrebind");
    let cap = ReplyCapture::start(&lab, GROUP_IF);
    let (mut client, log) = spawn_udhcpc(&lab, &work);
    let addr = lease_obtained(&lab, &srv, &gmac, &log);
    logged(&log, &format!("bound {addr}"), SETTLE_TIMEOUT);
    let first = srv.leases()[0].expiry;
    let carrier = bound_and_reachable(&lab, &addr);
    fail_over(&lab, &addr, &carrier);

    let seen = client.stderr_text().len();
    block_unicast_to_server(&lab);
    client.signal(libc::SIGUSR1); // renew now: unicast, then broadcast
    let server = common::ROUTER_IP;
    // udhcpc: "sending renew to server S", "broadcasting renew",
    // "lease of A obtained from S, lease time N".
    let obtained = format!("lease of {addr} obtained from {server}");
    let since_block = || client.stderr_text().get(seen..).unwrap_or_default().to_string();
    let extended = wait_until(RENEW_TIMEOUT, || since_block().contains(&obtained));
    let text = since_block();
    assert!(
        extended,
        "no ACK after the server went out of unicast reach:\n{text}"
    );
    let unicast = text.find(&format!("sending renew to server {server}"));
    let broadcast = text.find("broadcasting renew");
    let acked = text.find(&obtained);
    assert!(
        unicast.is_some() && unicast < broadcast && broadcast < acked,
        "not a unicast renewal (unanswered) then a broadcast one (answered):\n{text}"
    );
    logged(&log, &format!("renew {addr}"), SETTLE_TIMEOUT);
    let lease = one_lease(&srv, &gmac, &addr);
    assert!(
        lease.expiry > first,
        "the lease was not extended ({first} -> {})\n{}",
        lease.expiry,
        srv.describe()
    );
    assert!(client.running(), "udhcpc exited: {}", client.stderr_text());

    lab.exec_ok("router", &["tc", "qdisc", "del", "dev", "r0", "clsact"]);
    bound_and_reachable(&lab, &addr);
    client.stop(CLIENT_EXIT);
    each_reply_delivered_once(&srv, cap, &gmac);
}

/// systemd-networkd's own program, where the machine has it.
const NETWORKD: &str = "/usr/lib/systemd/systemd-networkd";
/// The user networkd drops to; its state directory must belong to it.
const NETWORKD_USER: &str = "systemd-network";

/// systemd-networkd (where present) as the DHCP client of the group
/// interface: lease, failover, renewal at T1. It is
/// the machine's network manager elsewhere, so it runs here in a mount
/// namespace of its own inside the lab: a private /run/systemd, its
/// configuration (one .network file matching only the group interface) bound
/// over /etc/systemd/network, and /sys read-only so it does not wait for
/// udev. It manages nothing else: every other link matches no file.
#[test]
fn systemd_networkd_leases_and_renews_after_failover() {
    let present = Path::new(NETWORKD).exists()
        && std::process::Command::new("id")
            .arg(NETWORKD_USER)
            .output()
            .is_ok_and(|o| o.status.success());
    if !present {
        eprintln!("skipped: no {NETWORKD} (or no user {NETWORKD_USER}) on this machine");
        return;
    }
    let Setup {
        lab,
        _daemon,
        srv,
        gmac,
        work,
    } = setup("dhcpnwd");
    let conf = work.join("network");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("50-group.network"),
        format!(
            "[Match]\nName={GROUP_IF}\n\n[Network]\nDHCP=ipv4\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n\n\
             [DHCPv4]\nSendHostname=no\nUseHostname=no\nUseDNS=no\n"
        ),
    )
    .unwrap();
    let cap = ReplyCapture::start(&lab, GROUP_IF);
    let script = format!(
        "mkdir -p /run/systemd && mount -t tmpfs tmpfs /run/systemd && \
         mkdir -p /run/systemd/netif/links /run/systemd/netif/leases /run/systemd/netif/lldp && \
         chown -R {NETWORKD_USER}: /run/systemd/netif && \
         mount --bind {} /etc/systemd/network && mount -o remount,ro /sys && \
         SYSTEMD_LOG_LEVEL=debug exec {NETWORKD}",
        path(&conf)
    );
    let mut networkd = lab.spawn("host", "unshare", &["-m", "sh", "-c", &script]);
    // networkd keeps no script log: its own output goes with a failure.
    let addr = lease_obtained(&lab, &srv, &gmac, &work.join("none"));
    let carrier = bound_and_reachable(&lab, &addr);
    fail_over(&lab, &addr, &carrier);

    // A renewal at T1 (20 s), unicast to the server through the members
    // that remain: the same lease, one client.
    let requests = srv.count("DHCPREQUEST", &gmac);
    let renewed = wait_until(RENEW_TIMEOUT, || {
        srv.count("DHCPREQUEST", &gmac) > requests && srv.count("DHCPACK", &gmac) > requests
    });
    assert!(
        renewed,
        "no renewal after the failover\n{}\n{}",
        srv.describe(),
        networkd.stderr_text()
    );
    one_lease(&srv, &gmac, &addr);

    // networkd keeps its configuration when it exits (so a restart does
    // not cut the host off): no release to check here.
    networkd.stop(CLIENT_EXIT);
    each_reply_delivered_once(&srv, cap, &gmac);
}

/// dhcpcd: lease (after its own ARP probe of the address through the
/// group), failover, renewal (SIGUSR1: now), release (SIGALRM: release
/// and exit). Its state directories are private (a mount namespace of its
/// own); its script is one the test writes, so no hook of the
/// distribution (resolv.conf, hostname) ever runs.
#[test]
fn dhcpcd_lease_survives_failover_renews_and_releases() {
    let Setup {
        lab,
        _daemon,
        srv,
        gmac,
        work,
    } = setup("dhcpcd");
    let log = work.join("script.log");
    let conf = work.join("dhcpcd.conf");
    std::fs::write(&conf, "ipv4only\nnoipv4ll\noption subnet_mask, routers\n").unwrap();
    // dhcpcd runs its script with an environment of its own: the log's
    // path is written into the script.
    let script = work.join("dhcpcd-script");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$reason ${{new_ip_address:-${{old_ip_address:-}}}}\" >>'{}'\n",
            path(&log)
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cap = ReplyCapture::start(&lab, GROUP_IF);
    let sh = format!(
        "mkdir -p /run/dhcpcd /var/lib/dhcpcd && mount -t tmpfs tmpfs /run/dhcpcd && \
         mount -t tmpfs tmpfs /var/lib/dhcpcd && \
         exec dhcpcd -B -d -4 -f '{}' -c '{}' {GROUP_IF}",
        path(&conf),
        path(&script)
    );
    let mut client = lab.spawn("host", "unshare", &["-m", "sh", "-c", &sh]);
    let addr = lease_obtained(&lab, &srv, &gmac, &log);
    logged(&log, &format!("BOUND {addr}"), SETTLE_TIMEOUT);
    let carrier = bound_and_reachable(&lab, &addr);
    fail_over(&lab, &addr, &carrier);

    client.signal(libc::SIGUSR1); // renew now
    logged(&log, &format!("RENEW {addr}"), RENEW_TIMEOUT);
    one_lease(&srv, &gmac, &addr);

    client.signal(libc::SIGALRM); // release and exit
    released(&lab, &srv, &gmac, &addr);
    client.stop(CLIENT_EXIT);
    each_reply_delivered_once(&srv, cap, &gmac);
}
