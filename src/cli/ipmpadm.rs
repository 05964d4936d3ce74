//! ipmpadm's command line.

use clap::{Parser, Subcommand, ValueEnum};

/// Administer the members of running IPMP groups.
#[derive(Parser, Debug)]
#[command(name = "ipmpadm", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Take a member out of service (another member takes over its traffic).
    Offline { interface: String },
    /// Put an offline member back into service.
    Online { interface: String },
    /// Re-read every group's configuration (as SIGHUP does).
    Reload,
    /// Make a member a standby (on) or a normal member (off).
    Standby { interface: String, state: Switch },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Switch {
    On,
    Off,
}
