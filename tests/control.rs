//! The control socket against hostile local clients: idle, dribbling,
//! endless-line and never-reading clients, and more of them than the caps
//! allow. Failover must happen while they are connected, and a well-behaved
//! ipmpstat must still be answered.

mod common;

use common::daemon::*;
use common::{wait_until, Lab};
use ipmpd::control::hostile::{Hostile, Kind};
use ipmpd::control::server::{MAX_CLIENTS, MAX_REQUEST_LINE, MAX_WATCHERS, ROOT_RESERVE};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

fn ipmpstat(lab: &Lab, args: &[&str]) -> (i32, String) {
    let (code, out, _) = common::daemon::ipmpstat(lab, args);
    (code, out)
}

fn sock(lab: &Lab) -> PathBuf {
    run_dir(lab).join("production0.sock")
}

/// The member the data address is bound to, from `ipmpstat -a`.
fn inbound(lab: &Lab) -> Option<String> {
    let (code, out) = ipmpstat(lab, &["-P", "-o", "address,inbound", "-a"]);
    if code != 0 {
        return None;
    }
    out.lines()
        .find(|l| l.starts_with(DATA))
        .and_then(|l| l.split(':').nth(1))
        .filter(|s| !s.is_empty())
        .map(String::from)
}

#[test]
fn failover_happens_while_hostile_clients_hold_the_control_socket() {
    let lab = Lab::new("ctlhost");
    let mut d = start_tutorial(&lab);
    let bound = inbound(&lab).expect("data address bound");
    // Fewer than the connection cap, so the test's own ipmpstat gets in.
    let hostile = Hostile::start(
        sock(&lab),
        &[(Kind::Idle, 8), (Kind::Dribble, 8), (Kind::Endless, 4)],
    );
    thread::sleep(Duration::from_millis(500));
    // ipmpstat is answered while they are connected.
    let (code, i) = ipmpstat(&lab, &["-i"]);
    assert_eq!(code, 0, "ipmpstat -i with hostile clients connected");
    assert!(i.contains(&bound), "{i}");

    // Cut the carrier of the member carrying the data address: the daemon
    // must act on it while the dribblers keep dribbling.
    lab.cut(&bound);
    let moved = wait_until(Duration::from_secs(10), || {
        d.stderr_text()
            .contains(&format!("The link has gone down on {bound}"))
            && inbound(&lab).is_some_and(|m| m != bound)
    });
    assert!(
        moved,
        "no failover while hostile clients were connected:\n{}",
        d.stderr_text()
    );
    // The router still reaches the data address, through another member.
    assert!(lab.ping("router", DATA, 3).received > 0);
    // Idle and dribbling clients were closed by the request deadline and
    // endless lines by the line cap (each reconnects and counts a close).
    let all_closed = wait_until(Duration::from_secs(10), || {
        hostile.closed(Kind::Idle) >= 8
            && hostile.closed(Kind::Dribble) >= 8
            && hostile.closed(Kind::Endless) >= 4
    });
    assert!(
        all_closed,
        "the daemon did not close slow clients (idle {}, dribbling {}, endless {})",
        hostile.closed(Kind::Idle),
        hostile.closed(Kind::Dribble),
        hostile.closed(Kind::Endless)
    );
    drop(hostile);
    assert!(d.running(), "{}", d.stderr_text());
    lab.restore(&bound);
}

#[test]
fn caps_on_connections_lines_and_watchers() {
    let lab = Lab::new("ctlcaps");
    let mut a = tutorial_args();
    a.extend(strings(&[
        "--probe",
        "arp",
        "--target",
        common::ROUTER_IP,
        "--fdt",
        "1s",
    ]));
    let mut d = start(&lab, &a, "ipmp0", DATA);
    let path = sock(&lab);

    // An oversized line is answered with an error naming the cap, then closed.
    let mut s = UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let big = vec![b'x'; MAX_REQUEST_LINE * 4];
    let _ = s.write_all(&big);
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    assert!(
        reply.contains(&format!("request longer than {MAX_REQUEST_LINE} bytes")),
        "{reply:?}"
    );

    // More connections than the cap (root, as the test runs, also has the
    // reserve): the extra ones are refused at once.
    let held: Vec<UnixStream> = (0..MAX_CLIENTS + ROOT_RESERVE)
        .map(|_| UnixStream::connect(&path).unwrap())
        .collect();
    thread::sleep(Duration::from_millis(200));
    let mut extra = UnixStream::connect(&path).unwrap();
    extra.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reply = String::new();
    let _ = extra.read_to_string(&mut reply);
    assert!(reply.contains("too many control clients"), "{reply:?}");
    drop(held);

    // Watchers that never read: at most MAX_WATCHERS; one more is refused.
    thread::sleep(Duration::from_millis(200));
    let req = b"{\"version\":1,\"command\":\"probes\"}\n";
    let mut watchers = Vec::new();
    for _ in 0..MAX_WATCHERS {
        let mut w = UnixStream::connect(&path).unwrap();
        w.write_all(req).unwrap();
        watchers.push(w);
    }
    thread::sleep(Duration::from_millis(200));
    let mut w = UnixStream::connect(&path).unwrap();
    w.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    w.write_all(req).unwrap();
    let mut reply = String::new();
    let _ = w.read_to_string(&mut reply);
    assert!(reply.contains("too many probe watchers"), "{reply:?}");

    // A watcher that floods the socket after its request is closed at once
    // (its writes fail) rather than read forever.
    drop(watchers.pop());
    thread::sleep(Duration::from_millis(200));
    let mut f = UnixStream::connect(&path).unwrap();
    f.write_all(req).unwrap();
    f.set_write_timeout(Some(Duration::from_millis(500))).unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let closed = wait_until(
        Duration::from_secs(10),
        || matches!(f.write(&chunk), Err(e) if matches!(e.kind(), std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset)),
    );
    assert!(closed, "a watcher flooding its socket was not closed");

    // Probing and failover go on with unread watchers attached.
    lab.cut("cable4");
    assert!(
        wait_until(Duration::from_secs(15), || d
            .stderr_text()
            .contains("IP interface failure detected")),
        "{}",
        d.stderr_text()
    );
    lab.restore("cable4");
    let (code, _) = ipmpstat(&lab, &["-g"]);
    assert_eq!(code, 0);
    drop(watchers);
    assert!(d.running());
}

/// One request line on a fresh connection; the daemon's one reply line.
fn ask(lab: &Lab, line: &str) -> String {
    let mut s = UnixStream::connect(sock(lab)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(line.as_bytes()).unwrap();
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    reply
}

#[test]
fn requests_the_daemon_cannot_take_are_refused_by_name() {
    let lab = Lab::new("ctlrefuse");
    let mut d = start_tutorial(&lab);
    for (line, says) in [
        (
            "{\"version\":1,\"command\":\"bogus\"}\n",
            "unknown command \\\"bogus\\\"",
        ),
        (
            "{\"version\":2,\"command\":\"status\"}\n",
            "protocol version 2 not supported",
        ),
        (
            "{\"version\":1,\"command\":\"standby\",\"args\":[\"rge0\",\"maybe\"]}\n",
            "standby: expected on or off, not \\\"maybe\\\"",
        ),
        (
            "{\"version\":1,\"command\":\"offline\"}\n",
            "offline: which interface?",
        ),
        (
            "{\"version\":1,\"command\":\"offline\",\"args\":[\"nosuch0\"]}\n",
            "nosuch0 is not in IPMP group production0",
        ),
    ] {
        let reply = ask(&lab, line);
        assert!(
            reply.starts_with("{\"version\":1,\"ok\":false,\"error\":") && reply.contains(says),
            "{line:?} answered {reply:?}"
        );
    }
    // A good request is still answered in the same form.
    assert!(ask(&lab, "{\"version\":1,\"command\":\"status\",\"args\":[]}\n")
        .starts_with("{\"version\":1,\"ok\":true,\"status\":{"));

    // Clients sending nothing but such requests do not wear the daemon down.
    let hostile = Hostile::start(sock(&lab), &[(Kind::Refused, 8)]);
    assert!(
        wait_until(Duration::from_secs(10), || hostile.closed(Kind::Refused) >= 64),
        "refused clients not answered and closed ({})",
        hostile.closed(Kind::Refused)
    );
    let (code, i) = ipmpstat(&lab, &["-i"]);
    assert_eq!(code, 0, "ipmpstat -i with refused clients connected");
    assert!(i.contains("e1000g0"), "{i}");
    drop(hostile);
    assert!(d.running(), "{}", d.stderr_text());
}
