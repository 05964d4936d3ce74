//! The lab's DHCPv4 server (dnsmasq on the router, `scripts/lab.sh
//! dhcp-server`), its lease file and log, and a capture of its replies as
//! they reach the group interface.

use super::{wait_until, Lab, Proc};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the server may take to start listening.
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long tcpdump may take to start capturing.
const CAPTURE_START_TIMEOUT: Duration = Duration::from_secs(10);
/// Grace for the server and tcpdump on SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What a client's test script logged (tests/tools/*-script).
pub fn client_log(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// Waits until the client's script logged `line`.
pub fn logged(log: &Path, line: &str, timeout: Duration) {
    let ok = wait_until(timeout, || client_log(log).lines().any(|l| l == line));
    assert!(ok, "client never logged {line:?}:\n{}", client_log(log));
}

/// One line of dnsmasq's lease file: `expiry chaddr address hostname client-id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// When the lease ends (seconds since the epoch): a renewal or a
    /// rebinding moves it on.
    pub expiry: u64,
    pub mac: [u8; 6],
    pub addr: String,
}

/// dnsmasq serving the lab's subnet on the router's r0.
pub struct DhcpServer {
    proc: Proc,
    pub dir: PathBuf,
}

impl DhcpServer {
    /// Starts the server (files in `<lab dir>/dhcp`) and waits until it
    /// logged that it serves r0.
    pub fn start(lab: &Lab) -> DhcpServer {
        Self::start_as(lab, "dhcp-server", "dhcp")
    }

    /// The DHCPv6 server (`scripts/lab.sh dhcp6-server`, files in
    /// `<lab dir>/dhcp6`).
    pub fn start_v6(lab: &Lab) -> DhcpServer {
        Self::start_as(lab, "dhcp6-server", "dhcp6")
    }

    fn start_as(lab: &Lab, subcommand: &str, dir: &str) -> DhcpServer {
        let dir = lab.dir.join(dir);
        let dir_s = dir.to_string_lossy().into_owned();
        let mut proc = lab.spawn_script(&[subcommand, &dir_s]);
        let log = dir.join("dnsmasq.log");
        let up = wait_until(SERVER_START_TIMEOUT, || {
            !proc.running()
                || std::fs::read_to_string(&log)
                    .is_ok_and(|l| l.contains("bound exclusively to interface r0"))
        });
        assert!(
            up && proc.running(),
            "dnsmasq did not start:\n{}{}",
            proc.stdout_text(),
            proc.stderr_text()
        );
        DhcpServer { proc, dir }
    }

    /// The server's log (every DHCP message, `--log-dhcp`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dnsmasq.log")).unwrap_or_default()
    }

    /// How many times the server logged message `kind` (e.g. "DHCPOFFER")
    /// for the client with hardware address `mac`.
    pub fn count(&self, kind: &str, mac: &[u8; 6]) -> usize {
        let tag = format!("{kind}(r0)");
        let mac = super::fmt_mac(mac);
        self.log()
            .lines()
            .filter(|l| l.contains(&tag) && l.contains(&mac))
            .count()
    }

    /// How many times the server logged message `kind` (e.g.
    /// "DHCPADVERTISE"), whoever the client: DHCPv6 logs name a DUID.
    pub fn count_all(&self, kind: &str) -> usize {
        let tag = format!("{kind}(r0)");
        self.log().lines().filter(|l| l.contains(&tag)).count()
    }

    /// The DHCPv6 lease file's address entries: `expiry iaid address
    /// hostname client-duid` (the server's own `duid` line skipped).
    pub fn leases_v6(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.join("leases")).unwrap_or_default();
        text.lines()
            .filter(|l| !l.starts_with("duid "))
            .filter_map(|l| Some(l.split_whitespace().nth(2)?.to_string()))
            .collect()
    }

    /// The lease file's entries.
    pub fn leases(&self) -> Vec<Lease> {
        let text = std::fs::read_to_string(self.dir.join("leases")).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let expiry = w.next()?.parse().ok()?;
                let mac = super::parse_mac(w.next()?)?;
                let addr = w.next()?.to_string();
                Some(Lease { expiry, mac, addr })
            })
            .collect()
    }

    /// The server's output, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "--- dnsmasq log ---\n{}--- leases ---\n{:?}\n--- stderr ---\n{}",
            self.log(),
            self.leases(),
            self.proc.stderr_text()
        )
    }
}

impl Drop for DhcpServer {
    fn drop(&mut self) {
        self.proc.stop(STOP_GRACE);
    }
}

/// tcpdump on the group interface, keeping the DHCP server's replies
/// (UDP from port 67) as they were delivered into it.
pub struct ReplyCapture {
    proc: Proc,
    /// DHCPv6: tcpdump prints the message types differently.
    v6: bool,
}

impl ReplyCapture {
    pub fn start(lab: &Lab, ifname: &str) -> ReplyCapture {
        Self::start_filter(lab, ifname, "udp and src port 67", false)
    }

    /// DHCPv6 server replies (UDP from port 547).
    pub fn start_v6(lab: &Lab, ifname: &str) -> ReplyCapture {
        Self::start_filter(lab, ifname, "udp and src port 547", true)
    }

    fn start_filter(lab: &Lab, ifname: &str, filter: &str, v6: bool) -> ReplyCapture {
        let mut proc = lab.spawn(
            "host",
            "tcpdump",
            // --immediate-mode: each packet printed as it comes, none left
            // in a ring block when the capture is stopped.
            &["-i", ifname, "--immediate-mode", "-n", "-l", "-v", "-e", filter],
        );
        let up = wait_until(CAPTURE_START_TIMEOUT, || {
            !proc.running() || proc.stderr_text().contains("listening on")
        });
        assert!(
            up && proc.running(),
            "tcpdump did not start: {}",
            proc.stderr_text()
        );
        ReplyCapture { proc, v6 }
    }

    /// The DHCP message types captured so far, in order ("Offer", "ACK",
    /// "NACK", ...; for DHCPv6 "advertise", "reply", ...).
    pub fn kinds(&self) -> Vec<String> {
        if self.v6 {
            return self.kinds_v6();
        }
        // tcpdump -v: "DHCP-Message (53), length 1: Offer"
        const KEY: &str = "DHCP-Message (53), length 1: ";
        self.proc
            .stdout_text()
            .lines()
            .filter_map(|l| l.split_once(KEY).map(|(_, k)| k.trim().to_string()))
            .collect()
    }

    /// tcpdump prints DHCPv6 as "dhcp6 advertise (...)".
    fn kinds_v6(&self) -> Vec<String> {
        const KEY: &str = " dhcp6 ";
        self.proc
            .stdout_text()
            .lines()
            .filter_map(|l| {
                let (_, rest) = l.split_once(KEY)?;
                Some(rest.split_whitespace().next()?.to_string())
            })
            .collect()
    }

    /// Waits until `done` holds for the captured kinds (bounded: the
    /// replies are already sent), stops the capture and returns the kinds
    /// and the whole text, for messages.
    pub fn finish(mut self, done: impl Fn(&[String]) -> bool) -> (Vec<String>, String) {
        wait_until(CAPTURE_START_TIMEOUT, || done(&self.kinds()));
        self.proc.stop(STOP_GRACE);
        (self.kinds(), self.proc.stdout_text())
    }
}
