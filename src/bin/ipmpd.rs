//! ipmpd: the IP multipathing daemon for one group.

use clap::Parser;
use ipmpd::cli::ipmpd::Cli;
use ipmpd::config::Source;

/// The exit code of a refused command line or configuration.
const USAGE_EXIT: i32 = 2;

fn fail(msg: &str) -> ! {
    ipmpd::logging::eprint_error("ipmpd", msg);
    std::process::exit(USAGE_EXIT);
}

fn main() {
    ipmpd::cli::completions::<Cli>("ipmpd");
    ipmpd::logging::init();
    ipmpd::daemon::panics::install_hook();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help and --version go to stdout as clap prints them.
            if !e.use_stderr() {
                let _ = e.print();
                std::process::exit(0);
            }
            // A usage error: on a terminal as clap prints it (styled),
            // under the journal as plain text with `<3>` on every line.
            if ipmpd::logging::stderr_is_journal() {
                ipmpd::logging::eprint_error_text(&e.render().to_string());
            } else {
                let _ = e.print();
            }
            std::process::exit(USAGE_EXIT);
        }
    };
    let check = cli.flags.check;
    // The same source is loaded again (file re-read, flags merged) on SIGHUP.
    let source = Source {
        flags: cli.flags,
        run_dir: ipmpd::cli::run_dir(),
    };
    let loaded = source.load().unwrap_or_else(|e| fail(&e.to_string()));
    if check {
        let what = loaded
            .file
            .as_ref()
            .map_or("the command line".to_string(), |p| p.display().to_string());
        println!("{what}: configuration of group {} is valid", loaded.cfg.group);
        return;
    }
    if let Err(e) = ipmpd::daemon::run(loaded.cfg, Some(source)) {
        log::error!("{e}");
        std::process::exit(e.exit_code());
    }
}
