//! Where ipmpd's log lines go and how they look: on a terminal (or a file)
//! as env_logger writes them, with a timestamp and a level word; under
//! systemd, whose journal stamps and ranks each line itself, as
//! `<PRIORITY>message` (sd-daemon(3) prefixes, read by journald when the
//! unit keeps `SyslogLevelPrefix=true`, its default).

use log::Level;
use std::os::unix::fs::MetadataExt;

/// The variable systemd sets to `DEVICE:INODE` of the stream it connected
/// to stdout/stderr (systemd.exec(5)).
pub const JOURNAL_STREAM_ENV: &str = "JOURNAL_STREAM";

/// Filter used when `RUST_LOG` is not set.
const DEFAULT_FILTER: &str = "info";

/// The syslog priorities of sd-daemon(3) the levels map to.
const PRIO_ERR: u8 = 3;
const PRIO_WARNING: u8 = 4;
const PRIO_INFO: u8 = 6;
const PRIO_DEBUG: u8 = 7;

/// The sd-daemon(3) priority of a log level: errors 3, warnings 4, info 6,
/// debug and trace 7.
pub fn priority(level: Level) -> u8 {
    match level {
        Level::Error => PRIO_ERR,
        Level::Warn => PRIO_WARNING,
        Level::Info => PRIO_INFO,
        Level::Debug | Level::Trace => PRIO_DEBUG,
    }
}

/// Whether `JOURNAL_STREAM` (`DEVICE:INODE`, decimal) names the file
/// stderr is open on: only then is stderr the journal, and not a terminal
/// or a redirection a child of the service made.
pub fn is_journal_stream(var: Option<&str>, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = var.and_then(|v| v.trim().split_once(':')) else {
        return false;
    };
    d.parse::<u64>().ok() == Some(dev) && i.parse::<u64>().ok() == Some(ino)
}

/// Whether this process's stderr is connected to the journal.
pub fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    let var = std::env::var(JOURNAL_STREAM_ENV).ok();
    if var.is_none() {
        return false;
    }
    // fstat(2) of a duplicate of fd 2: no unsafe code, nothing opened by path.
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    let Ok(meta) = std::fs::File::from(fd).metadata() else {
        return false;
    };
    is_journal_stream(var.as_deref(), meta.dev(), meta.ino())
}

/// `text` for the journal: every line prefixed `<prio>`, each ended by a
/// newline. journald reads each line of a stream as its own entry, so a
/// line without a prefix would be logged at the unit's default priority
/// (info) and drop out of `journalctl -p`.
pub fn journal_lines(prio: u8, text: &str) -> String {
    let mut out = String::with_capacity(text.len() + PREFIX_RESERVE);
    for line in text.lines() {
        out.push_str(&format!("<{prio}>{line}\n"));
    }
    if out.is_empty() {
        // An empty message is still one (empty) entry.
        out.push_str(&format!("<{prio}>\n"));
    }
    out
}

/// Room reserved for the prefixes of a few lines.
const PREFIX_RESERVE: usize = 16;

/// Writes `program: msg` to stderr for a refusal before the logger runs
/// (a bad command line or configuration), as an error (`<3>` on every
/// line) when stderr is the journal.
pub fn eprint_error(program: &str, msg: &str) {
    let text = format!("{program}: {msg}");
    if stderr_is_journal() {
        eprint!("{}", journal_lines(PRIO_ERR, &text));
    } else {
        eprintln!("{text}");
    }
}

/// Writes an already formatted, possibly multi-line error text (a command
/// line parser's) to stderr: as is, or under the journal with `<3>` on
/// every line and no terminal styling.
pub fn eprint_error_text(text: &str) {
    if stderr_is_journal() {
        eprint!("{}", journal_lines(PRIO_ERR, text));
    } else {
        eprint!("{text}");
    }
}

/// Sets up the logger of the daemon (`RUST_LOG` filters, default info).
pub fn init() {
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(DEFAULT_FILTER));
    if stderr_is_journal() {
        b.format(|buf, record| {
            use std::io::Write;
            let text = record.args().to_string();
            buf.write_all(journal_lines(priority(record.level()), &text).as_bytes())
        });
    } else {
        b.format_target(false);
    }
    b.init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_to_sd_daemon_priorities() {
        assert_eq!(priority(Level::Error), 3);
        assert_eq!(priority(Level::Warn), 4);
        assert_eq!(priority(Level::Info), 6);
        assert_eq!(priority(Level::Debug), 7);
        assert_eq!(priority(Level::Trace), 7);
    }

    #[test]
    fn journal_stream_must_name_stderr_exactly() {
        assert!(is_journal_stream(Some("8:12345"), 8, 12345));
        assert!(is_journal_stream(Some("8:12345\n"), 8, 12345));
        assert!(!is_journal_stream(None, 8, 12345));
        assert!(!is_journal_stream(Some("8:12346"), 8, 12345));
        assert!(!is_journal_stream(Some("9:12345"), 8, 12345));
        assert!(!is_journal_stream(Some("812345"), 8, 12345));
        assert!(!is_journal_stream(Some(":"), 0, 0));
        assert!(!is_journal_stream(Some("-1:5"), 0, 5));
        assert!(!is_journal_stream(Some("8:12345:1"), 8, 12345));
    }

    #[test]
    fn every_line_of_a_message_carries_the_priority() {
        assert_eq!(journal_lines(4, "one"), "<4>one\n");
        assert_eq!(
            journal_lines(3, "one\ntwo\n\nfour"),
            "<3>one\n<3>two\n<3>\n<3>four\n"
        );
        assert_eq!(journal_lines(3, "a\r\nb\n"), "<3>a\n<3>b\n");
        assert_eq!(journal_lines(6, ""), "<6>\n");
    }
}
