//! ipmpstat: show every IPMP group's state, as Solaris ipmpstat does.

use clap::Parser;
use ipmpd::cli::ipmpstat::Cli;
use ipmpd::control::{format, socket, GroupStatus, Reply, Request, NOT_RUNNING};

/// Every group whose daemon answers on its socket in the run directory.
fn collect(run_dir: &std::path::Path) -> Vec<GroupStatus> {
    ipmpd::cli::group_sockets(run_dir)
        .iter()
        .filter_map(|p| match socket::request(p, &Request::Status) {
            Ok(Reply::Status(s)) => Some(*s),
            Ok(Reply::Done) => None,
            Ok(Reply::Error(e)) => {
                eprintln!("ipmpstat: {}: {e}", p.display());
                None
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                eprintln!(
                    "ipmpstat: {}: permission denied (status is root-only unless the administrator opens it)",
                    p.display()
                );
                None
            }
            Err(_) => None, // a stale socket of a daemon that is gone
        })
        .collect()
}

fn main() {
    ipmpd::cli::completions::<Cli>("ipmpstat");
    let cli = Cli::parse();
    // One mode is required, except by --json, which alone prints everything.
    let moded = cli.addresses || cli.groups || cli.interfaces || cli.probes || cli.targets || cli.metrics;
    if !moded && !cli.json {
        <Cli as clap::CommandFactory>::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "one mode is required: -a, -g, -i, -p, -t or --metrics (or --json alone)",
            )
            .exit();
    }
    let _ = cli.numeric;
    let run_dir = ipmpd::cli::run_dir();
    if cli.probes {
        watch_probes(&run_dir, cli.fields.as_deref(), cli.parsable);
    }
    let groups = collect(&run_dir);
    if groups.is_empty() {
        eprintln!("ipmpstat: {NOT_RUNNING}");
        std::process::exit(1);
    }
    if cli.metrics {
        print!("{}", ipmpd::control::metrics::render(&groups));
        return;
    }
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&groups).expect("status serializes")
        );
        return;
    }
    let fields = cli.fields.as_deref();
    let out = if cli.addresses {
        format::render(&format::addresses_table(&groups), fields, cli.parsable)
    } else if cli.groups {
        format::render(&format::groups_table(&groups), fields, cli.parsable)
    } else if cli.interfaces {
        format::render(&format::interfaces_table(&groups), fields, cli.parsable)
    } else {
        format::render(&format::targets_table(&groups), fields, cli.parsable)
    };
    match out {
        Ok(out) => print!("{out}"),
        Err(e) => {
            eprintln!("ipmpstat: {e}");
            std::process::exit(2);
        }
    }
}

/// `-p`: subscribes to every daemon's probe stream and prints one row per
/// probe outcome (lost probes with empty RTT fields) until interrupted.
fn watch_probes(run_dir: &std::path::Path, fields: Option<&str>, parsable: bool) -> ! {
    use std::io::{BufRead, BufReader, Write};
    let socks = ipmpd::cli::group_sockets(run_dir);
    let (tx, rx) = std::sync::mpsc::channel::<ipmpd::control::ProbeEvent>();
    let mut reached = false;
    let mut disabled = false;
    for p in socks {
        match socket::open_stream(&p, &Request::Probes) {
            Ok(Ok(stream)) => {
                reached = true;
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(stream).lines() {
                        let Ok(line) = line else { break };
                        if let Ok(ev) = serde_json::from_str(&line) {
                            if tx.send(ev).is_err() {
                                break;
                            }
                        }
                    }
                });
            }
            Ok(Err(_)) => {
                reached = true;
                disabled = true;
            }
            Err(_) => {}
        }
    }
    drop(tx);
    if !reached {
        eprintln!("ipmpstat: {NOT_RUNNING}");
        std::process::exit(1);
    }
    let start = std::time::Instant::now();
    let mut first = true;
    let mut any = false;
    for ev in rx {
        any = true;
        let t = format::probe_table(start.elapsed(), ev);
        let sel = fields.unwrap_or(format::PROBE_FIELDS);
        match format::render(&t, Some(sel), parsable) {
            Ok(out) => {
                // The header once, then rows only.
                let text = if first || parsable {
                    out
                } else {
                    out.lines().skip(1).map(|l| format!("{l}\n")).collect()
                };
                first = false;
                print!("{text}");
                let _ = std::io::stdout().flush();
            }
            Err(e) => {
                eprintln!("ipmpstat: {e}");
                std::process::exit(2);
            }
        }
    }
    if disabled && !any {
        eprintln!("ipmpstat: probe-based failure detection is disabled");
    }
    std::process::exit(1);
}
