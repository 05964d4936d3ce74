//! Holds hostile clients on a control socket for a bounded time (for
//! `scripts/bench-failover.sh`): idle ones, ones that dribble a byte every
//! 150 ms, ones that send an endless line, and (none by default) ones that
//! send requests the daemon must refuse; each reconnects when the daemon
//! closes it. Prints how often the daemon closed each kind.
//!
//! Usage: ctlhostile SOCKET SECONDS [IDLE DRIBBLE ENDLESS [REFUSED]]

use ipmpd::control::hostile::{Hostile, Kind};
use std::time::Duration;

/// Longest run allowed: the tool stops by itself.
const MAX_SECONDS: u64 = 600;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = || -> ! {
        eprintln!("usage: ctlhostile SOCKET SECONDS [IDLE DRIBBLE ENDLESS [REFUSED]]");
        std::process::exit(2)
    };
    let (Some(path), Some(secs)) = (args.get(1), args.get(2).and_then(|s| s.parse::<u64>().ok())) else {
        usage()
    };
    if secs == 0 || secs > MAX_SECONDS {
        eprintln!("ctlhostile: SECONDS must be 1..{MAX_SECONDS}");
        std::process::exit(2);
    }
    let n = |i: usize, default: usize| args.get(i).map_or(Some(default), |s| s.parse().ok());
    let (Some(idle), Some(dribble), Some(endless), Some(refused)) = (n(3, 8), n(4, 8), n(5, 4), n(6, 0))
    else {
        usage()
    };
    let h = Hostile::start(
        path.into(),
        &[
            (Kind::Idle, idle),
            (Kind::Dribble, dribble),
            (Kind::Endless, endless),
            (Kind::Refused, refused),
        ],
    );
    std::thread::sleep(Duration::from_secs(secs));
    println!(
        "closed by the daemon: idle {}, dribbling {}, endless {}, refused {}",
        h.closed(Kind::Idle),
        h.closed(Kind::Dribble),
        h.closed(Kind::Endless),
        h.closed(Kind::Refused)
    );
}
