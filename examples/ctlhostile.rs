//! Holds hostile clients on a control socket for a bounded time (for
//! `scripts/bench-failover.sh`): idle ones, ones that dribble a byte every
//! 150 ms, and ones that send an endless line; each reconnects when the
//! daemon closes it. Prints how often the daemon closed each kind.
//!
//! Usage: ctlhostile SOCKET SECONDS [IDLE DRIBBLE ENDLESS]

use ipmpd::control::hostile::{Hostile, Kind};
use std::time::Duration;

/// Longest run allowed: the tool stops by itself.
const MAX_SECONDS: u64 = 600;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = || -> ! {
        eprintln!("usage: ctlhostile SOCKET SECONDS [IDLE DRIBBLE ENDLESS]");
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
    let (Some(idle), Some(dribble), Some(endless)) = (n(3, 8), n(4, 8), n(5, 4)) else {
        usage()
    };
    let h = Hostile::start(
        path.into(),
        &[
            (Kind::Idle, idle),
            (Kind::Dribble, dribble),
            (Kind::Endless, endless),
        ],
    );
    std::thread::sleep(Duration::from_secs(secs));
    println!(
        "closed by the daemon: idle {}, dribbling {}, endless {}",
        h.closed(Kind::Idle),
        h.closed(Kind::Dribble),
        h.closed(Kind::Endless)
    );
}
