//! What the three binaries share on their command lines.

pub mod ipmpadm;
pub mod ipmpd;
pub mod ipmpstat;

use std::path::{Path, PathBuf};

/// The run directory: `IPMPD_RUN_DIR`, else /run/ipmpd (ipmpd, ipmpstat
/// and ipmpadm alike).
pub fn run_dir() -> PathBuf {
    std::env::var_os(crate::config::RUN_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_RUN_DIR))
}

/// Every group's control socket in the run directory, sorted.
pub fn group_sockets(run_dir: &Path) -> Vec<PathBuf> {
    let mut socks: Vec<PathBuf> = std::fs::read_dir(run_dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "sock"))
                .collect()
        })
        .unwrap_or_default();
    socks.sort();
    socks
}

/// `NAME --completions SHELL` prints a completion script and exits; checked
/// before the real parse, so no other argument is required then.
pub fn completions<C: clap::CommandFactory>(name: &str) {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) != Some("--completions") {
        return;
    }
    let Some(shell) = argv.get(2).and_then(|s| s.parse::<clap_complete::Shell>().ok()) else {
        eprintln!("{name}: --completions needs one of bash, zsh, fish, elvish, powershell");
        std::process::exit(2);
    };
    clap_complete::generate(shell, &mut C::command(), name, &mut std::io::stdout());
    std::process::exit(0);
}
