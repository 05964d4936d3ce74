//! ipmpd: the IP multipathing daemon for one group.

use clap::Parser;
use ipmpd::cli::ipmpd::Cli;
use ipmpd::config::Source;

fn fail(msg: &str) -> ! {
    ipmpd::logging::eprint_error("ipmpd", msg);
    std::process::exit(2);
}

fn main() {
    ipmpd::cli::completions::<Cli>("ipmpd");
    ipmpd::logging::init();
    ipmpd::daemon::panics::install_hook();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
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
