//! Helpers of the netlink tests: a private network namespace per test and
//! `ip` to set up and check what the code under test sees.

use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{Event, EventSocket, Handle, LinkInfo};
pub use crate::sys::testns::unshare_net;

/// Runs `f` on a thread that lives in a fresh, empty network namespace,
/// so nothing here can touch the host's interfaces.
pub fn in_netns<F: FnOnce() + Send + 'static>(f: F) {
    thread::spawn(move || {
        unshare_net();
        f();
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p));
}

pub fn try_ip(args: &[&str]) -> Output {
    Command::new("ip").args(args).output().expect("running ip")
}

/// Runs `ip` in the calling thread's namespace (children inherit it).
pub fn ip(args: &[&str]) -> String {
    let out = try_ip(args);
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn ip_batch(cmds: &str) {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("running ip -batch");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(cmds.as_bytes()).unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

/// Creates an Ethernet-like test link and returns its kind: a dummy
/// where the kernel has them (this VM's does not), else one end of a
/// veth pair whose peer is `{name}p`.
pub fn add_plain(name: &str) -> &'static str {
    if try_ip(&["link", "add", name, "type", "dummy"]).status.success() {
        return "dummy";
    }
    let peer = format!("{name}p");
    ip(&["link", "add", name, "type", "veth", "peer", "name", &peer]);
    "veth"
}

pub fn link(h: &mut Handle, name: &str) -> LinkInfo {
    h.link_by_name(name).unwrap().expect(name)
}

/// Polls `cond` for up to 5 s; the changes tested are normally
/// synchronous, the margin is for slow machines.
pub fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    cond()
}

pub fn wait_event(es: &mut EventSocket, seen: &mut Vec<Event>, pred: impl Fn(&Event) -> bool) {
    let found = eventually(|| {
        es.drain(seen).unwrap();
        seen.iter().any(&pred)
    });
    assert!(found, "expected event not seen; got {seen:#?}");
}
