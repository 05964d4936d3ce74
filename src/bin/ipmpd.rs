//! ipmpd: the IP multipathing daemon for one group.

use clap::{Parser, ValueEnum};
use ipmpd::config::{self, GroupConfig, MemberConfig};
use ipmpd::datapath::plan::Outbound;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OutboundArg {
    /// Spread unicast per flow (addresses, protocol, ports).
    Flow,
    /// Send through the member the source address is bound to.
    Bound,
}

/// Solaris-style IP multipathing for Linux: a group interface holds the data
/// addresses and its traffic leaves and enters through several member NICs.
#[derive(Parser, Debug)]
#[command(name = "ipmpd", version, about, long_about = None)]
struct Cli {
    /// Name of the IPMP group.
    #[arg(long, value_name = "NAME")]
    group: String,
    /// Name of the group interface (a TAP device created by ipmpd).
    #[arg(long, value_name = "IF", default_value = config::DEFAULT_INTERFACE)]
    interface: String,
    /// Data address of the group (repeatable), e.g. 192.0.2.200/24.
    #[arg(long = "data", value_name = "ADDR/PREFIX", value_parser = config::parse_data_addr)]
    data: Vec<config::DataAddr>,
    /// Member NIC (repeatable); must exist at start.
    #[arg(long = "member", value_name = "IF")]
    members: Vec<String>,
    /// Member NIC that joins when it appears (repeatable).
    #[arg(long = "optional-member", value_name = "IF")]
    optional_members: Vec<String>,
    /// How unicast IPv4 picks a member.
    #[arg(long, value_enum, default_value = "flow")]
    outbound: OutboundArg,
    /// Take members that still carry addresses or non-kernel routes.
    #[arg(long)]
    force: bool,
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_target(false)
        .init();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let run_dir = std::env::var_os(config::RUN_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_RUN_DIR));
    let members = cli
        .members
        .iter()
        .map(|n| MemberConfig {
            name: n.clone(),
            optional: false,
        })
        .chain(cli.optional_members.iter().map(|n| MemberConfig {
            name: n.clone(),
            optional: true,
        }))
        .collect();
    let cfg = GroupConfig {
        group: cli.group,
        interface: cli.interface,
        data: cli.data,
        members,
        outbound: match cli.outbound {
            OutboundArg::Flow => Outbound::Flow,
            OutboundArg::Bound => Outbound::Bound,
        },
        force: cli.force,
        run_dir,
    };
    if let Err(e) = ipmpd::daemon::run(cfg) {
        log::error!("{e}");
        std::process::exit(e.exit_code());
    }
}
