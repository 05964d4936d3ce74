//! ipmpd's command line.

use crate::config::Flags;
use clap::Parser;

/// Solaris-style IP multipathing for Linux: a group interface holds the data
/// addresses and its traffic leaves and enters through several member NICs.
/// Settings come from /etc/ipmpd/GROUP.toml when it exists; flags override it.
#[derive(Parser, Debug, Clone)]
#[command(name = "ipmpd", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub flags: Flags,
}
