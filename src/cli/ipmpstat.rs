//! ipmpstat's command line.

use clap::{ArgGroup, Parser};

/// Display IPMP groups, interfaces, addresses and probe targets.
#[derive(Parser, Debug)]
#[command(name = "ipmpstat", version, about, long_about = None)]
#[command(group(ArgGroup::new("mode").required(true).args(["addresses", "groups", "interfaces", "probes", "targets", "metrics"])))]
pub struct Cli {
    /// Data addresses: where each is bound (INBOUND) and which members carry it out.
    #[arg(short = 'a')]
    pub addresses: bool,
    /// Groups: state, failure detection time, members.
    #[arg(short = 'g')]
    pub groups: bool,
    /// Member interfaces: active, flags, link, probe and state.
    #[arg(short = 'i')]
    pub interfaces: bool,
    /// Live probe results, until interrupted.
    #[arg(short = 'p')]
    pub probes: bool,
    /// Probe targets of each member.
    #[arg(short = 't')]
    pub targets: bool,
    /// Numeric output (addresses are always shown numerically).
    #[arg(short = 'n')]
    pub numeric: bool,
    /// Output fields, comma-separated, case-insensitive ("all" for every one).
    #[arg(short = 'o', value_name = "FIELD[,...]")]
    pub fields: Option<String>,
    /// Parsable output: no header, fields separated by ':' (needs -o).
    #[arg(short = 'P', requires = "fields")]
    pub parsable: bool,
    /// Counters and states in Prometheus text format.
    #[arg(long)]
    pub metrics: bool,
    /// Machine-readable JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}
