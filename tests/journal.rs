//! Log lines under systemd: when stderr is the journal (`JOURNAL_STREAM`
//! names it), each line is `<PRIORITY>message` with no timestamp; else
//! as on a terminal. Runs the real daemon with stderr on a file and
//! `JOURNAL_STREAM` set to that file's device and inode, as systemd does.

mod common;

use common::daemon::{members_only_args, run_dir, BIN};
use common::{wait_until, Lab};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long a line may take to appear in the log.
const LOG_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the daemon may take to exit on SIGTERM.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);
/// The member whose cable is cut.
const CUT: &str = "e1000g0";
/// The start-up line of a group with no data addresses.
const READY: &str = "group production0 ready on ipmp0: 3 of 3 members active, no data addresses yet";

/// Starts ipmpd (members only) with stderr on `log`; `journal` sets
/// JOURNAL_STREAM to the file's DEVICE:INODE, else to another inode.
fn spawn(lab: &Lab, log: &Path, journal: bool) -> Child {
    let f = File::create(log).unwrap();
    let meta = f.metadata().unwrap();
    let ino = if journal { meta.ino() } else { meta.ino() + 1 };
    Command::new("ip")
        .args(["netns", "exec", &lab.ns("host"), "env"])
        .arg(format!("IPMPD_RUN_DIR={}", run_dir(lab).display()))
        .arg("RUST_LOG=info")
        .arg(format!("JOURNAL_STREAM={}:{ino}", meta.dev()))
        .arg(BIN)
        .args(members_only_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(f)
        .spawn()
        .unwrap()
}

fn read(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

fn wait_for(log: &Path, what: &str) -> String {
    assert!(
        wait_until(LOG_TIMEOUT, || read(log).contains(what)),
        "{what:?} not logged:\n{}",
        read(log)
    );
    read(log)
}

fn stop(mut child: Child) {
    // SAFETY: plain syscall on our own unreaped child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let done = wait_until(EXIT_TIMEOUT, || child.try_wait().ok().flatten().is_some());
    if !done {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The line of `text` containing `what`.
fn line_of<'a>(text: &'a str, what: &str) -> &'a str {
    text.lines().find(|l| l.contains(what)).unwrap_or("")
}

#[test]
fn under_the_journal_lines_carry_priorities_and_no_timestamp() {
    let lab = Lab::new("journal");
    let log = lab.dir.join("journal.stderr");
    let d = spawn(&lab, &log, true);
    wait_for(&log, READY);
    lab.cut(CUT);
    wait_for(&log, &format!("The link has gone down on {CUT}"));
    lab.restore(CUT);
    wait_for(&log, &format!("The link has come up on {CUT}"));
    stop(d);
    let text = wait_for(&log, "members restored");
    assert_eq!(line_of(&text, READY), format!("<6>{READY}"), "{text}");
    // A clean start logs nothing at warning or above (`journalctl -p
    // warning` stays empty): every line up to the ready line is <5>..<7>.
    for l in text.lines() {
        assert!(
            l.starts_with("<5>") || l.starts_with("<6>") || l.starts_with("<7>"),
            "start-up line at warning or above: {l:?}\n{text}"
        );
        if l.contains(READY) {
            break;
        }
    }
    // A failure and its repair reach `journalctl -p warning`.
    assert_eq!(
        line_of(&text, "has gone down"),
        format!("<4>The link has gone down on {CUT}"),
        "{text}"
    );
    assert_eq!(
        line_of(&text, "has come up"),
        format!("<4>The link has come up on {CUT}"),
        "{text}"
    );
    for l in text.lines() {
        let b = l.as_bytes();
        assert!(
            b.len() > 3 && b[0] == b'<' && (b'0'..=b'7').contains(&b[1]) && b[2] == b'>',
            "line without a priority: {l:?}"
        );
        assert!(
            !l.contains(" INFO ") && !l.contains(" WARN "),
            "level word: {l:?}"
        );
    }
    // Routine lines stay below warning.
    assert!(line_of(&text, "joined group").starts_with("<6>"), "{text}");
}

#[test]
fn when_stderr_is_not_the_journal_lines_are_as_on_a_terminal() {
    let lab = Lab::new("nojournal");
    let log = lab.dir.join("terminal.stderr");
    let d = spawn(&lab, &log, false);
    let text = wait_for(&log, READY);
    stop(d);
    let l = line_of(&text, READY);
    // env_logger's own format: "[TIMESTAMP INFO ] message".
    assert!(
        l.starts_with('[') && l.contains(" INFO ") && l.ends_with(READY),
        "{l:?}"
    );
    assert!(!text.contains("<6>"), "{text}");
}

/// Runs ipmpd with `args` to its refusal, stderr the journal; its stderr.
fn refused(lab: &Lab, args: &[&str]) -> String {
    let log = lab.dir.join("refused.stderr");
    let f = File::create(&log).unwrap();
    let meta = f.metadata().unwrap();
    let st = Command::new("ip")
        .args(["netns", "exec", &lab.ns("host"), "env"])
        .arg(format!("IPMPD_RUN_DIR={}", run_dir(lab).display()))
        .arg(format!("JOURNAL_STREAM={}:{}", meta.dev(), meta.ino()))
        .arg(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(f)
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(2), "{}", read(&log));
    read(&log)
}

#[test]
fn refusals_reach_the_journal_as_errors() {
    let lab = Lab::new("journalno");
    // Refused by the configuration's checks, before the logger runs.
    let text = refused(
        &lab,
        &["--group", "g0", "--member", "e1000g0", "--member", "e1000g0"],
    );
    assert!(
        text.starts_with("<3>ipmpd: ") && text.contains("member e1000g0 is given twice"),
        "{text:?}"
    );
    // Refused at start-up: a member that does not exist.
    let text = refused(&lab, &["--group", "g0", "--member", "nosuch0"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("<3>") && l.contains("nosuch0")),
        "{text:?}"
    );
    // Refused by the command line parser: a multi-line text (error, usage,
    // hint), every line an error entry, no terminal styling.
    let text = refused(&lab, &["--no-such-flag"]);
    assert!(text.lines().count() > 1, "{text:?}");
    assert!(text.contains("--no-such-flag"), "{text:?}");
    for l in text.lines() {
        assert!(l.starts_with("<3>"), "line without <3>: {l:?} in {text:?}");
        assert!(!l.contains('\x1b'), "terminal styling: {l:?}");
    }
}

#[test]
fn parse_errors_off_the_journal_are_as_clap_prints_them() {
    let lab = Lab::new("journalcl");
    let log = lab.dir.join("parse.stderr");
    let f = File::create(&log).unwrap();
    let st = Command::new(BIN)
        .arg("--no-such-flag")
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(f)
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(2));
    let text = read(&log);
    assert!(
        text.starts_with("error: ") && text.contains("--no-such-flag"),
        "{text:?}"
    );
    assert!(!text.contains("<3>"), "{text:?}");
}
