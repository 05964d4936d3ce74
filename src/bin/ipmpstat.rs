//! ipmpstat: show every IPMP group's state, as Solaris ipmpstat does.

use clap::{ArgGroup, Parser};
use ipmpd::config;
use ipmpd::control::{format, socket, GroupStatus, NOT_RUNNING};
use std::path::PathBuf;

/// Display IPMP groups, interfaces, addresses and probe targets.
#[derive(Parser, Debug)]
#[command(name = "ipmpstat", version, about, long_about = None)]
#[command(group(ArgGroup::new("mode").required(true).args(["addresses", "groups", "interfaces", "targets", "metrics"])))]
struct Cli {
    /// Data addresses: where each is bound (INBOUND) and which members carry it out.
    #[arg(short = 'a')]
    addresses: bool,
    /// Groups: state, failure detection time, members.
    #[arg(short = 'g')]
    groups: bool,
    /// Member interfaces: active, flags, link, probe and state.
    #[arg(short = 'i')]
    interfaces: bool,
    /// Probe targets of each member.
    #[arg(short = 't')]
    targets: bool,
    /// Numeric output (addresses are always shown numerically).
    #[arg(short = 'n')]
    numeric: bool,
    /// Output fields, comma-separated, case-insensitive ("all" for every one).
    #[arg(short = 'o', value_name = "FIELD[,...]")]
    fields: Option<String>,
    /// Parsable output: no header, fields separated by ':' (needs -o).
    #[arg(short = 'P', requires = "fields")]
    parsable: bool,
    /// Counters and states in Prometheus text format.
    #[arg(long)]
    metrics: bool,
    /// Machine-readable JSON instead of the table.
    #[arg(long)]
    json: bool,
}

/// Every group whose daemon answers on its socket in the run directory.
fn collect(run_dir: &PathBuf) -> Vec<GroupStatus> {
    let Ok(dir) = std::fs::read_dir(run_dir) else {
        return Vec::new();
    };
    let mut socks: Vec<PathBuf> = dir
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sock"))
        .collect();
    socks.sort();
    socks
        .iter()
        .filter_map(|p| match socket::request(p, "status", &[]) {
            Ok(r) if r.ok => r.status,
            Ok(r) => {
                eprintln!("ipmpstat: {}: {}", p.display(), r.error.unwrap_or_default());
                None
            }
            Err(_) => None, // a stale socket of a daemon that is gone
        })
        .collect()
}

fn main() {
    let cli = Cli::parse();
    let _ = cli.numeric;
    let run_dir = std::env::var_os(config::RUN_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_RUN_DIR));
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
    let table = if cli.addresses {
        format::addresses_table(&groups)
    } else if cli.groups {
        format::groups_table(&groups)
    } else if cli.interfaces {
        format::interfaces_table(&groups)
    } else {
        format::targets_table(&groups)
    };
    match format::render(&table, cli.fields.as_deref(), cli.parsable) {
        Ok(out) => print!("{out}"),
        Err(e) => {
            eprintln!("ipmpstat: {e}");
            std::process::exit(2);
        }
    }
}
