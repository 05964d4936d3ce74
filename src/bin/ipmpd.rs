//! ipmpd: the IP multipathing daemon for one group.

use clap::{Parser, ValueEnum};
use ipmpd::config::{self, DetectConfig, GroupConfig, MemberConfig, ProbeMode};
use ipmpd::config_file::{self, FileConfig, OutboundName, ProbeName};
use ipmpd::datapath::plan::Outbound;
use ipmpd::detect;
use std::path::PathBuf;
use std::time::Duration;

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
/// Settings come from /etc/ipmpd/GROUP.toml when it exists; flags override it.
#[derive(Parser, Debug, Clone)]
#[command(name = "ipmpd", version, about, long_about = None)]
struct Cli {
    /// Name of the IPMP group (with --check --config, defaults to the file's name).
    #[arg(long, value_name = "NAME", required_unless_present = "check")]
    group: Option<String>,
    /// Configuration file [default: CONFIG_DIR/GROUP.toml, if it exists].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory of group files [env: IPMPD_CONFIG_DIR] [default: /etc/ipmpd].
    #[arg(long, value_name = "DIR")]
    config_dir: Option<PathBuf>,
    /// Validate the configuration and exit (0: valid; 2: not, with the reason).
    #[arg(long)]
    check: bool,
    /// Name of the group interface (a TAP device created by ipmpd) [default: ipmp0].
    #[arg(long, value_name = "IF")]
    interface: Option<String>,
    /// Data address of the group (repeatable), e.g. 192.0.2.200/24.
    #[arg(long = "data", value_name = "ADDR/PREFIX", value_parser = config::parse_data_addr)]
    data: Vec<config::DataAddr>,
    /// Member NIC (repeatable); must exist at start.
    #[arg(long = "member", value_name = "IF")]
    members: Vec<String>,
    /// Member NIC that joins when it appears (repeatable).
    #[arg(long = "optional-member", value_name = "IF")]
    optional_members: Vec<String>,
    /// Standby member (repeatable): used only when an active member fails.
    #[arg(long = "standby", value_name = "IF")]
    standbys: Vec<String>,
    /// How unicast IPv4 picks a member [default: flow].
    #[arg(long, value_enum)]
    outbound: Option<OutboundArg>,
    /// Probe-based failure detection [default: icmp when a test address is given, else off].
    #[arg(long, value_enum)]
    probe: Option<ProbeArg>,
    /// Test address of a member for ICMP probes (repeatable), e.g. e1000g0=192.0.2.201/24.
    #[arg(long = "test-address", value_name = "IF=ADDR/PREFIX", value_parser = config::parse_test_address)]
    test_addresses: Vec<(String, config::DataAddr)>,
    /// Probe target (repeatable); default: the routers of the group's subnets.
    #[arg(long = "target", value_name = "ADDR")]
    targets: Vec<std::net::Ipv4Addr>,
    /// Failure detection time, e.g. 10s or 100ms (minimum 100ms) [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = config::parse_duration)]
    fdt: Option<Duration>,
    /// Whether a repaired member becomes active again [default: yes].
    #[arg(long, value_name = "yes|no", value_parser = config::parse_yes_no, action = clap::ArgAction::Set)]
    failback: Option<bool>,
    /// Gratuitous ARPs sent when an address moves to another member [default: 2].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32)
        .range(i64::from(detect::GARP_COUNT_MIN)..=i64::from(detect::GARP_COUNT_MAX)))]
    garp_count: Option<u32>,
    /// Link-ups per 60 s before a repair is held; 0 disables flap damping [default: 2].
    #[arg(long, value_name = "N")]
    link_flap_limit: Option<u32>,
    /// How often physical NICs' carrier is read with ETHTOOL_GLINK [default: 50ms].
    #[arg(long, value_name = "DURATION", value_parser = config::parse_duration)]
    link_poll: Option<Duration>,
    /// Let any local user read the status with ipmpstat (changes stay root-only).
    #[arg(long)]
    status_readable_by_all: bool,
    /// Take members that still carry addresses or non-kernel routes.
    #[arg(long)]
    force: bool,
}

fn fail(msg: &str) -> ! {
    eprintln!("ipmpd: {msg}");
    std::process::exit(2);
}

/// The group file: --config, else CONFIG_DIR/GROUP.toml. Missing is fine
/// unless it was named explicitly (the flags may be a complete group).
fn file_config(cli: &Cli) -> Result<(Option<PathBuf>, FileConfig), String> {
    let path = match (&cli.config, &cli.group) {
        (Some(p), _) => p.clone(),
        (None, Some(g)) => cli
            .config_dir
            .clone()
            .or_else(|| std::env::var_os(config_file::CONFIG_DIR_ENV).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(config_file::DEFAULT_CONFIG_DIR))
            .join(format!("{g}.toml")),
        (None, None) => return Err("--check needs --config FILE or --group NAME".into()),
    };
    if cli.config.is_none() && !path.exists() {
        return Ok((None, FileConfig::default()));
    }
    config_file::load(&path).map(|f| (Some(path), f))
}

/// Flags override the file; the file overrides the defaults.
fn merge(
    cli: Cli,
    file: FileConfig,
    path: Option<&PathBuf>,
    run_dir: PathBuf,
) -> Result<GroupConfig, String> {
    let group = cli.group.clone().unwrap_or_else(|| {
        path.and_then(|p| p.file_stem())
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let flags_name_members =
        !(cli.members.is_empty() && cli.standbys.is_empty() && cli.optional_members.is_empty());
    // Members from the flags replace the file's list; a repeated --member
    // stays repeated so validation names it.
    let mut members: Vec<MemberConfig> = if flags_name_members {
        cli.members.iter().map(|n| MemberConfig::new(n)).collect()
    } else {
        file.members
            .iter()
            .map(|m| MemberConfig {
                name: m.name.clone(),
                optional: m.optional,
                standby: m.standby,
                test_address: m.test_address,
            })
            .collect()
    };
    let mut add = |name: &str, f: &dyn Fn(&mut MemberConfig)| {
        if !members.iter().any(|m| m.name == name) {
            members.push(MemberConfig::new(name));
        }
        f(members.iter_mut().find(|m| m.name == name).expect("just added"));
    };
    for n in &cli.standbys {
        add(n, &|m| m.standby = true);
    }
    for n in &cli.optional_members {
        add(n, &|m| m.optional = true);
    }
    for (ifname, a) in &cli.test_addresses {
        let Some(m) = members.iter_mut().find(|m| &m.name == ifname) else {
            return Err(format!(
                "--test-address {ifname}={a}: {ifname} is not a member (give --member {ifname})"
            ));
        };
        m.test_address = Some(*a);
    }
    let probe = cli
        .probe
        .map(|p| match p {
            ProbeArg::Off => ProbeMode::Off,
            ProbeArg::Icmp => ProbeMode::Icmp,
            ProbeArg::Arp => ProbeMode::Arp,
        })
        .or(file.probe.map(|p| match p {
            ProbeName::Off => ProbeMode::Off,
            ProbeName::Icmp => ProbeMode::Icmp,
            ProbeName::Arp => ProbeMode::Arp,
        }));
    let outbound = match (cli.outbound, file.outbound) {
        (Some(OutboundArg::Bound), _) | (None, Some(OutboundName::Bound)) => Outbound::Bound,
        _ => Outbound::Flow,
    };
    Ok(GroupConfig {
        group,
        interface: cli
            .interface
            .or(file.interface)
            .unwrap_or_else(|| config::DEFAULT_INTERFACE.to_string()),
        data: if cli.data.is_empty() { file.data } else { cli.data },
        members,
        outbound,
        detect: DetectConfig {
            probe,
            targets: if cli.targets.is_empty() {
                file.targets
            } else {
                cli.targets
            },
            fdt: cli
                .fdt
                .or(file.failure_detection_time)
                .unwrap_or(detect::FDT_DEFAULT),
            failback: cli.failback.or(file.failback).unwrap_or(true),
            garp_count: cli
                .garp_count
                .or(file.garp_count)
                .unwrap_or(detect::GARP_COUNT_DEFAULT),
            link_flap_limit: cli
                .link_flap_limit
                .or(file.link_flap_limit)
                .unwrap_or(detect::LINK_FLAP_LIMIT_DEFAULT),
            link_poll: cli
                .link_poll
                .or(file.link_poll)
                .unwrap_or(detect::LINK_POLL_DEFAULT),
        },
        routes: file.routes.iter().map(|r| (r.destination, r.gateway)).collect(),
        status_world_readable: cli.status_readable_by_all || file.status_readable_by_all.unwrap_or(false),
        force: cli.force,
        run_dir,
    })
}

/// Points a validation error at the file line it is about: the last line
/// holding a quoted word of the message (a repeated member's second entry,
/// a test address that is also a data address, ...).
fn locate(path: Option<&PathBuf>, msg: &str) -> String {
    let Some(p) = path else { return msg.to_string() };
    let Ok(text) = std::fs::read_to_string(p) else {
        return msg.to_string();
    };
    let words: Vec<&str> = msg
        .split(|c: char| c.is_whitespace() || c == ',' || c == ':')
        .filter(|w| w.len() > 1)
        .collect();
    let line = text
        .lines()
        .enumerate()
        .filter(|(_, l)| {
            words
                .iter()
                .any(|w| l.contains(&format!("\"{w}")) || l.contains(&format!("{w}\"")))
        })
        .map(|(i, _)| i + 1)
        .last();
    match line {
        Some(n) => format!("{}: line {n}: {msg}", p.display()),
        None => format!("{}: {msg}", p.display()),
    }
}

/// The whole configuration: file (if any) merged with the flags.
fn load(cli: &Cli, run_dir: &std::path::Path) -> Result<(Option<PathBuf>, GroupConfig), String> {
    let (path, file) = file_config(cli)?;
    let cfg = merge(cli.clone(), file, path.as_ref(), run_dir.to_path_buf())?;
    Ok((path, cfg))
}

fn main() {
    ipmpd::cli::completions::<Cli>("ipmpd");
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_target(false)
        .init();
    ipmpd::daemon::panics::install_hook();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let run_dir = ipmpd::cli::run_dir();
    let (path, cfg) = load(&cli, &run_dir).unwrap_or_else(|e| fail(&e));
    if cli.check {
        let what = path
            .as_ref()
            .map_or("the command line".to_string(), |p| p.display().to_string());
        match cfg.validate() {
            Ok(()) => println!("{what}: configuration of group {} is valid", cfg.group),
            Err(e) => fail(&locate(path.as_ref(), &e)),
        }
        return;
    }
    if let Err(e) = cfg.validate() {
        fail(&locate(path.as_ref(), &e));
    }
    // SIGHUP re-reads the file and merges the same flags again.
    let reloader: ipmpd::daemon::Reloader = Box::new(move || {
        let (path, cfg) = load(&cli, &run_dir)?;
        cfg.validate().map_err(|e| locate(path.as_ref(), &e))?;
        Ok(cfg)
    });
    if let Err(e) = ipmpd::daemon::run(cfg, Some(reloader)) {
        log::error!("{e}");
        std::process::exit(e.exit_code());
    }
}
