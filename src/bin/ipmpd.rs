//! ipmpd: the IP multipathing daemon for one group.

use clap::{Parser, ValueEnum};
use ipmpd::config::{self, DetectConfig, GroupConfig, MemberConfig, ProbeMode};
use ipmpd::datapath::plan::Outbound;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ProbeArg {
    /// Link state only.
    Off,
    /// ICMP echo from per-member test addresses.
    Icmp,
    /// ARP requests to the targets (no test addresses needed).
    Arp,
}

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
    /// Standby member (repeatable): used only when an active member fails.
    #[arg(long = "standby", value_name = "IF")]
    standbys: Vec<String>,
    /// Probe-based failure detection [default: icmp when a test address is given, else off].
    #[arg(long, value_enum)]
    probe: Option<ProbeArg>,
    /// Test address of a member for ICMP probes (repeatable), e.g. e1000g0=192.0.2.201/24.
    #[arg(long = "test-address", value_name = "IF=ADDR/PREFIX", value_parser = config::parse_test_address)]
    test_addresses: Vec<(String, config::DataAddr)>,
    /// Probe target (repeatable); default: the routers of the group's subnets.
    #[arg(long = "target", value_name = "ADDR")]
    targets: Vec<std::net::Ipv4Addr>,
    /// Failure detection time, e.g. 10s or 100ms (minimum 100ms).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = config::parse_duration)]
    fdt: std::time::Duration,
    /// Whether a repaired member becomes active again.
    #[arg(long, value_name = "yes|no", default_value = "yes", value_parser = config::parse_yes_no,
          action = clap::ArgAction::Set)]
    failback: bool,
    /// Gratuitous ARPs sent when an address moves to another member.
    #[arg(long, value_name = "N", default_value_t = ipmpd::detect::GARP_COUNT_DEFAULT,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    garp_count: u32,
    /// Link-ups per 60 s before a repair is held (0 disables flap damping).
    #[arg(long, value_name = "N", default_value_t = ipmpd::detect::LINK_FLAP_LIMIT_DEFAULT)]
    link_flap_limit: u32,
    /// How often physical NICs' carrier is read with ETHTOOL_GLINK.
    #[arg(long, value_name = "DURATION", default_value = "50ms", value_parser = config::parse_duration)]
    link_poll: std::time::Duration,
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
    // A repeated --member stays repeated so validation names it; --standby
    // and --optional-member may name a --member or add one.
    let mut members: Vec<MemberConfig> = cli.members.iter().map(|n| MemberConfig::new(n)).collect();
    let mut add = |name: &str, f: &dyn Fn(&mut MemberConfig)| {
        if !members.iter().any(|m| m.name == name) {
            members.push(MemberConfig::new(name));
        }
        let m = members.iter_mut().find(|m| m.name == name).expect("just added");
        f(m);
    };
    for n in &cli.standbys {
        add(n, &|m| m.standby = true);
    }
    for n in &cli.optional_members {
        add(n, &|m| m.optional = true);
    }
    for (ifname, a) in &cli.test_addresses {
        let Some(m) = members.iter_mut().find(|m| &m.name == ifname) else {
            eprintln!(
                "error: --test-address {ifname}={a}: {ifname} is not a member (give --member {ifname})"
            );
            std::process::exit(2);
        };
        m.test_address = Some(*a);
    }
    let cfg = GroupConfig {
        group: cli.group,
        interface: cli.interface,
        data: cli.data,
        members,
        outbound: match cli.outbound {
            OutboundArg::Flow => Outbound::Flow,
            OutboundArg::Bound => Outbound::Bound,
        },
        detect: DetectConfig {
            probe: cli.probe.map(|p| match p {
                ProbeArg::Off => ProbeMode::Off,
                ProbeArg::Icmp => ProbeMode::Icmp,
                ProbeArg::Arp => ProbeMode::Arp,
            }),
            targets: cli.targets,
            fdt: cli.fdt,
            failback: cli.failback,
            garp_count: cli.garp_count,
            link_flap_limit: cli.link_flap_limit,
            link_poll: cli.link_poll,
        },
        force: cli.force,
        run_dir,
    };
    if let Err(e) = ipmpd::daemon::run(cfg) {
        log::error!("{e}");
        std::process::exit(e.exit_code());
    }
}
