//! ipmpadm: take members offline and back (Solaris if_mpadm -d / -r) and
//! toggle standby, through the daemon's control socket.

use clap::Parser;
use ipmpd::cli::ipmpadm::{Cli, Cmd, Switch};
use ipmpd::control::{socket, Reply, Request, NOT_RUNNING};

fn main() {
    ipmpd::cli::completions::<Cli>("ipmpadm");
    let cli = Cli::parse();
    let run_dir = ipmpd::cli::run_dir();
    if matches!(cli.command, Cmd::Reload) {
        reload_all(&run_dir);
    }
    let request = match cli.command {
        Cmd::Reload => unreachable!("handled above"),
        Cmd::Offline { interface } => Request::Offline { member: interface },
        Cmd::Online { interface } => Request::Online { member: interface },
        Cmd::Standby { interface, state } => Request::Standby {
            member: interface,
            standby: matches!(state, Switch::On),
        },
    };
    let ifname = request.member().expect("a member change");
    let socks = ipmpd::cli::group_sockets(&run_dir);
    let mut reached = false;
    let mut denied = None;
    for p in &socks {
        let status = match socket::request(p, &Request::Status) {
            Ok(Reply::Status(s)) => Some(s),
            Ok(_) => None,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                denied = Some(e);
                continue;
            }
            Err(_) => continue,
        };
        reached = true;
        if !status.is_some_and(|s| s.members.iter().any(|m| m.name == ifname)) {
            continue;
        }
        match socket::request(p, &request) {
            Ok(Reply::Error(e)) => {
                eprintln!("ipmpadm: {e}");
                std::process::exit(1);
            }
            Ok(_) => return,
            Err(e) => {
                eprintln!("ipmpadm: {}: {e}", p.display());
                std::process::exit(1);
            }
        }
    }
    if let Some(e) = denied.filter(|_| !reached) {
        eprintln!("ipmpadm: permission denied talking to ipmpd ({e}): run as root");
    } else if reached {
        eprintln!("ipmpadm: {ifname} is not in an IPMP group");
    } else {
        eprintln!("ipmpadm: {NOT_RUNNING}");
    }
    std::process::exit(1);
}

/// Asks every daemon to re-read its configuration.
fn reload_all(run_dir: &std::path::Path) -> ! {
    let socks = ipmpd::cli::group_sockets(run_dir);
    let mut reached = 0;
    let mut failed = false;
    for p in socks {
        match socket::request(&p, &Request::Reload) {
            Ok(Reply::Error(e)) => {
                eprintln!("ipmpadm: {e}");
                failed = true;
            }
            Ok(_) => reached += 1,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                eprintln!("ipmpadm: permission denied talking to ipmpd ({e}): run as root");
                failed = true;
            }
            Err(_) => {}
        }
    }
    if reached == 0 && !failed {
        eprintln!("ipmpadm: {NOT_RUNNING}");
    }
    std::process::exit(i32::from(failed || reached == 0));
}
