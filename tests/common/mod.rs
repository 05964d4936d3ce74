//! Network-namespace lab for integration tests.
//!
//! The topology is defined once, in `scripts/lab.sh`; [`Lab::new`] runs
//! `scripts/lab.sh up` with a unique `LAB_PREFIX`, and dropping the [`Lab`]
//! (also while a test panics) runs `scripts/lab.sh down`:
//!
//! ```text
//!   host: e1000g0 ── swa br0 ── cable4 ── swb br0 ── sw-router ── router r0 192.0.2.1/24
//!         e1000g1 ──┘                      │
//!         rge0 ────────────────────────────┘
//! ```
//!
//! Needs root (network namespaces). Include with `mod common;`.
#![allow(dead_code)]

pub mod daemon;
pub mod dhcp;
pub mod xfer;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Lab namespace roles, as accepted by [`Lab::ns`].
pub const ROLES: [&str; 4] = ["host", "swa", "swb", "router"];
/// Host-side member NICs.
pub const MEMBERS: [&str; 3] = ["e1000g0", "e1000g1", "rge0"];
/// The router's address on the test subnet.
pub const ROUTER_IP: &str = "192.0.2.1";

static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Path of `scripts/lab.sh` in this crate.
pub fn lab_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab.sh")
}

/// Polls `f` every 20 ms until it returns true or `timeout` elapses; returns
/// whether it succeeded. (For readiness, not for timing assertions.)
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.trim().split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
/// A MAC as bare hex digits (`aabbccddeeff`), as raw-frame scripts take it.
pub fn hex_mac(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect()
}

/// Stops a capture (SIGINT flushes its output, once the last frames are
/// printed) and returns its text.
pub fn stop_capture(mut p: Proc) -> String {
    std::thread::sleep(Duration::from_millis(300));
    p.signal(libc::SIGINT);
    p.wait_timeout(Duration::from_secs(5));
    p.stdout_text()
}

pub fn fmt_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Names of network namespaces that currently exist (`ip netns list`).
pub fn netns_list() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("run ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(out: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// Result of [`Lab::ping`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PingResult {
    pub transmitted: u32,
    pub received: u32,
    pub duplicates: u32,
    /// ICMP errors reported by ping (`+N errors`), e.g. host unreachable.
    pub errors: u32,
    /// Full stdout + stderr of ping, for assertion messages.
    pub output: String,
}

impl PingResult {
    /// Parses the iputils summary line
    /// `20 packets transmitted, 20 received, +1 duplicates, +2 errors, 0% packet loss, time 190ms`.
    pub fn parse(output: &str) -> PingResult {
        let mut r = PingResult {
            output: output.to_string(),
            ..PingResult::default()
        };
        let Some(line) = output.lines().find(|l| l.contains("packets transmitted")) else {
            return r;
        };
        for field in line.split(',') {
            let mut words = field.split_whitespace();
            let (Some(num), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = num.trim_start_matches('+').parse::<u32>() else {
                continue;
            };
            match what {
                "packets" => r.transmitted = n,
                "received" => r.received = n,
                "duplicates" => r.duplicates = n,
                "errors" => r.errors = n,
                _ => {}
            }
        }
        r
    }

    /// Every probe answered exactly once.
    pub fn clean(&self) -> bool {
        self.transmitted > 0 && self.received == self.transmitted && self.duplicates == 0 && self.errors == 0
    }

    /// Asserts [`clean`](Self::clean), with ping's output in the message.
    #[track_caller]
    pub fn expect_clean(&self) {
        assert!(self.clean(), "ping not clean:\n{}", self.output);
    }
}

/// One lab topology in its own set of namespaces `<prefix>-{host,swa,swb,router}`.
pub struct Lab {
    pub prefix: String,
    /// Per-lab temporary directory (process logs). Removed on drop unless the
    /// test panicked.
    pub dir: PathBuf,
    spawned: AtomicU32,
}

impl Lab {
    /// Builds a fresh lab with a unique prefix (`ipt<pid>n<counter><tag>`)
    /// by running `scripts/lab.sh up`; panics with its output on failure.
    pub fn new(tag: &str) -> Lab {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(euid, 0, "the namespace lab needs root");
        let tag: String = tag.chars().filter(char::is_ascii_alphanumeric).take(8).collect();
        let n = LAB_COUNTER.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("ipt{}n{}{}", std::process::id() % 100_000, n, tag);
        let dir = std::env::temp_dir().join(format!("ipmpd-lab-{prefix}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create lab temp dir");
        let lab = Lab {
            prefix,
            dir,
            spawned: AtomicU32::new(0),
        };
        let out = lab.script(&["up"]);
        if !out.status.success() {
            // lab.sh removes a half-built lab itself; Drop runs `down` again.
            panic!("lab.sh up ({}) failed: {}", lab.prefix, describe(&out));
        }
        lab
    }

    /// Runs `scripts/lab.sh ARGS` with this lab's prefix.
    pub fn script(&self, args: &[&str]) -> Output {
        Command::new("bash")
            .arg(lab_script())
            .args(args)
            .env("LAB_PREFIX", &self.prefix)
            .stdin(Stdio::null())
            .output()
            .expect("run scripts/lab.sh")
    }

    fn script_ok(&self, args: &[&str]) {
        let out = self.script(args);
        assert!(
            out.status.success(),
            "lab.sh {} ({}) failed: {}",
            args.join(" "),
            self.prefix,
            describe(&out)
        );
    }

    /// `"host"` -> `"<prefix>-host"`.
    pub fn ns(&self, which: &str) -> String {
        assert!(ROLES.contains(&which), "unknown lab namespace {which:?}");
        format!("{}-{}", self.prefix, which)
    }

    /// `ip netns exec <ns> cmd...`, output captured.
    pub fn exec(&self, which: &str, cmd: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(which)])
            .args(cmd)
            .stdin(Stdio::null())
            .output()
            .expect("run ip netns exec")
    }

    /// Like [`Lab::exec`], but panics unless the command succeeds; returns stdout.
    pub fn exec_ok(&self, which: &str, cmd: &[&str]) -> String {
        let out = self.exec(which, cmd);
        assert!(
            out.status.success(),
            "in {}: {:?} failed: {}",
            self.ns(which),
            cmd,
            describe(&out)
        );
        text(&out.stdout)
    }

    /// `bash -c SCRIPT` inside the namespace.
    pub fn sh(&self, which: &str, script: &str) -> Output {
        self.exec(which, &["bash", "-c", script])
    }

    /// Like [`Lab::sh`], but panics unless the script succeeds; returns stdout.
    pub fn sh_ok(&self, which: &str, script: &str) -> String {
        self.exec_ok(which, &["bash", "-c", script])
    }

    /// Cuts a cable: `e1000g0|e1000g1|rge0` (member loses carrier), `router`
    /// (router's switch port down) or `cable4` (silent inter-switch cut).
    pub fn cut(&self, cable: &str) {
        self.script_ok(&["cut", cable]);
    }

    /// Undoes [`Lab::cut`].
    pub fn restore(&self, cable: &str) {
        self.script_ok(&["restore", cable]);
    }

    /// MAC address of `ifname` in the namespace.
    pub fn mac(&self, which: &str, ifname: &str) -> [u8; 6] {
        let path = format!("/sys/class/net/{ifname}/address");
        let out = self.exec_ok(which, &["cat", &path]);
        parse_mac(&out).unwrap_or_else(|| panic!("bad MAC {out:?} for {ifname}"))
    }

    /// Link flags of `ifname`, e.g. `["BROADCAST", "MULTICAST", "UP", "LOWER_UP"]`.
    pub fn link_flags(&self, which: &str, ifname: &str) -> Vec<String> {
        let out = self.exec_ok(which, &["ip", "-o", "link", "show", "dev", ifname]);
        let flags = out
            .split_once('<')
            .and_then(|(_, rest)| rest.split_once('>'))
            .map(|(flags, _)| flags)
            .unwrap_or("");
        flags
            .split(',')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Whether `ifname` has carrier (`LOWER_UP`).
    pub fn has_carrier(&self, which: &str, ifname: &str) -> bool {
        self.link_flags(which, ifname).iter().any(|f| f == "LOWER_UP")
    }

    /// `ping -c COUNT -i 0.01 -W 1 -w DEADLINE DST` from the namespace.
    ///
    /// iputils semantics with `-w`: ping stops once COUNT replies arrived, at
    /// the deadline (2 s + 1 s per 100 probes), or at the first ICMP error;
    /// under loss it keeps probing until the deadline, so `transmitted` may
    /// exceed COUNT.
    pub fn ping(&self, from: &str, dst: &str, count: u32) -> PingResult {
        let deadline = (2 + count.div_ceil(100)).to_string();
        let count = count.to_string();
        let out = self.exec(
            from,
            &[
                "ping", "-n", "-c", &count, "-i", "0.01", "-W", "1", "-w", &deadline, dst,
            ],
        );
        PingResult::parse(&format!("{}{}", text(&out.stdout), text(&out.stderr)))
    }

    /// Link-layer address the namespace's neighbour table holds for `ip`
    /// (from `ip -j neigh show to IP`); `None` if absent or unresolved.
    pub fn neigh_mac(&self, which: &str, ip: &str) -> Option<[u8; 6]> {
        let out = self.exec_ok(which, &["ip", "-j", "neigh", "show", "to", ip]);
        // [{"dst":"192.0.2.50","dev":"r0","lladdr":"aa:bb:cc:dd:ee:ff","state":["REACHABLE"]}]
        const KEY: &str = "\"lladdr\":\"";
        let start = out.find(KEY)? + KEY.len();
        let end = out[start..].find('"')? + start;
        parse_mac(&out[start..end])
    }

    /// Starts `program args...` in the namespace in the background; its
    /// stdout/stderr go to files in the lab's temp dir.
    pub fn spawn(&self, which: &str, program: &str, args: &[&str]) -> Proc {
        // `ip netns exec` execs the program, so the child's pid is the program's.
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(which), program]).args(args);
        self.spawn_command(which, program, cmd)
    }

    /// Starts `scripts/lab.sh ARGS` with this lab's prefix in the background
    /// (a subcommand that execs its server, e.g. `dhcp-server`, so the
    /// [`Proc`] is the server itself).
    pub fn spawn_script(&self, args: &[&str]) -> Proc {
        let mut cmd = Command::new("bash");
        cmd.arg(lab_script()).args(args).env("LAB_PREFIX", &self.prefix);
        self.spawn_command("lab", args.first().copied().unwrap_or("lab"), cmd)
    }

    fn spawn_command(&self, which: &str, program: &str, mut cmd: Command) -> Proc {
        let n = self.spawned.fetch_add(1, Ordering::Relaxed);
        let base = Path::new(program)
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "proc".into());
        let name = format!("{n}-{which}-{base}");
        let stdout_path = self.dir.join(format!("{name}.stdout"));
        let stderr_path = self.dir.join(format!("{name}.stderr"));
        let stdout = File::create(&stdout_path).expect("create stdout log");
        let stderr = File::create(&stderr_path).expect("create stderr log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program} ({which}) for {}: {e}", self.prefix));
        Proc {
            child,
            status: None,
            name,
            stdout_path,
            stderr_path,
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let panicking = thread::panicking();
        if panicking {
            let out = self.script(&["status"]);
            eprintln!(
                "lab {} at panic:\n{}{}",
                self.prefix,
                text(&out.stdout),
                text(&out.stderr)
            );
        }
        let out = self.script(&["down"]);
        if !out.status.success() {
            eprintln!("lab.sh down ({}) failed: {}", self.prefix, describe(&out));
        }
        let has_logs = fs::read_dir(&self.dir).is_ok_and(|mut d| d.next().is_some());
        if panicking && has_logs {
            eprintln!("lab {}: logs kept in {}", self.prefix, self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A background process started by [`Lab::spawn`]. Dropping it sends SIGTERM,
/// waits up to 5 s, then SIGKILLs.
pub struct Proc {
    child: Child,
    status: Option<ExitStatus>,
    pub name: String,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig` (e.g. `libc::SIGTERM`), unless the process was already reaped.
    pub fn signal(&self, sig: i32) {
        if self.status.is_some() {
            return; // reaped: the pid may belong to someone else now
        }
        // SAFETY: plain syscall; the pid is our unreaped child (at worst a zombie).
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
    }

    /// Exit status if the process has exited (non-blocking).
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.try_wait().is_none()
    }

    /// Waits up to `d` for the process to exit.
    pub fn wait_timeout(&mut self, d: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + d;
        loop {
            if let Some(st) = self.try_wait() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL; returns the exit status.
    pub fn stop(&mut self, grace: Duration) -> ExitStatus {
        self.signal(libc::SIGTERM);
        if let Some(st) = self.wait_timeout(grace) {
            return st;
        }
        self.signal(libc::SIGKILL);
        let st = self.child.wait().expect("wait");
        self.status = Some(st);
        st
    }

    pub fn stdout_text(&self) -> String {
        fs::read(&self.stdout_path).map(|b| text(&b)).unwrap_or_default()
    }

    pub fn stderr_text(&self) -> String {
        fs::read(&self.stderr_path).map(|b| text(&b)).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            let _ = self.stop(Duration::from_secs(5));
        }
    }
}
