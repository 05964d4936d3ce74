//! The Debian package: `scripts/package.sh` builds it (once for this file's
//! tests), and the tests read it back with dpkg-deb: the files and their
//! modes, the conffile, what the maintainer scripts do, that every man page
//! renders without a groff warning and lists the command's flags, and that
//! the packaged binaries run. The package is unpacked into a temporary
//! directory (`dpkg-deb -x`), never installed on this machine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const COMMANDS: [&str; 3] = ["ipmpd", "ipmpstat", "ipmpadm"];
const MAN_PAGES: [(&str, &str); 4] = [
    ("ipmpd", "8"),
    ("ipmpstat", "8"),
    ("ipmpadm", "8"),
    ("ipmpd.toml", "5"),
];
/// Width the pages are rendered at, as on a terminal.
const MAN_WIDTH: &str = "80";
/// The hyphen groff inserts where it breaks a word (UTF-8 output).
const HYPHENATION: char = '\u{2010}';
/// clap's help: an option's line starts within this many spaces.
const OPTION_INDENT: usize = 6;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(run(cmd).stdout).expect("UTF-8 output")
}

struct Built {
    deb: PathBuf,
    /// The package's files, unpacked.
    tree: PathBuf,
    /// Its control files (postinst, conffiles, ...).
    control: PathBuf,
}

/// Builds the package once and unpacks it.
fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        run(Command::new(root().join("scripts/package.sh")).current_dir(root()));
        let arch = stdout(Command::new("dpkg").arg("--print-architecture"));
        let deb = root().join(format!("target/debian/ipmpd_{VERSION}_{}.deb", arch.trim()));
        assert!(deb.is_file(), "{} was not built", deb.display());
        // Under target/, replaced by each run: nothing left in /tmp.
        let scratch = root().join("target/package-test");
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).unwrap();
        let (tree, control) = (scratch.join("tree"), scratch.join("control"));
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree));
        run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
        Built { deb, tree, control }
    })
}

/// `dpkg-deb -c`: path (without the leading ".") to mode string.
fn listing() -> BTreeMap<String, String> {
    let text = stdout(Command::new("dpkg-deb").arg("-c").arg(&built().deb));
    text.lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let path = cols.get(5)?.strip_prefix('.')?;
            Some((path.trim_end_matches('/').to_string(), cols[0].to_string()))
        })
        .collect()
}

#[test]
fn the_package_holds_every_file_with_its_mode() {
    let files = listing();
    let mut expected: Vec<(String, &str)> = Vec::new();
    for cmd in COMMANDS {
        expected.push((format!("/usr/sbin/{cmd}"), "-rwxr-xr-x"));
        expected.push((
            format!("/usr/share/bash-completion/completions/{cmd}"),
            "-rw-r--r--",
        ));
        expected.push((format!("/usr/share/zsh/vendor-completions/_{cmd}"), "-rw-r--r--"));
        expected.push((
            format!("/usr/share/fish/vendor_completions.d/{cmd}.fish"),
            "-rw-r--r--",
        ));
    }
    for (page, section) in MAN_PAGES {
        expected.push((
            format!("/usr/share/man/man{section}/{page}.{section}.gz"),
            "-rw-r--r--",
        ));
    }
    for f in [
        "/usr/lib/systemd/system/ipmpd@.service",
        "/usr/lib/NetworkManager/conf.d/90-ipmpd-unmanaged.conf",
        "/usr/lib/systemd/network/05-ipmpd-unmanaged.network",
        "/etc/ipmpd/production0.toml.example",
        "/usr/share/doc/ipmpd/copyright",
        "/usr/share/doc/ipmpd/README.md",
    ] {
        expected.push((f.to_string(), "-rw-r--r--"));
    }
    for (path, mode) in &expected {
        assert_eq!(
            files.get(path).map(String::as_str),
            Some(*mode),
            "{path} in the package, mode {mode}; the package holds:\n{files:#?}"
        );
    }
    // Nothing in the configuration directory that ipmpd would load: only
    // the example.
    let in_etc: Vec<&String> = files.keys().filter(|p| p.starts_with("/etc/ipmpd/")).collect();
    assert_eq!(in_etc, ["/etc/ipmpd/production0.toml.example"]);
}

#[test]
fn the_control_fields_and_the_conffile() {
    let deb = &built().deb;
    let fields = stdout(
        Command::new("dpkg-deb")
            .arg("-f")
            .arg(deb)
            .args(["Package", "Version"]),
    );
    assert_eq!(fields, format!("Package: ipmpd\nVersion: {VERSION}\n"));
    let conffiles = stdout(Command::new("dpkg-deb").arg("-I").arg(deb).arg("conffiles"));
    assert_eq!(conffiles.trim(), "/etc/ipmpd/production0.toml.example");
}

#[test]
fn the_binaries_are_stripped_and_answer_version() {
    for cmd in COMMANDS {
        let bin = built().tree.join("usr/sbin").join(cmd);
        let out = stdout(Command::new(&bin).arg("--version"));
        assert_eq!(out.trim(), format!("{cmd} {VERSION}"));
        let sections = stdout(Command::new("readelf").arg("-S").arg("-W").arg(&bin));
        assert!(!sections.contains(".debug_info"), "{cmd} carries debug info");
    }
}

#[test]
fn the_unit_runs_the_packaged_daemon() {
    let unit = std::fs::read_to_string(built().tree.join("usr/lib/systemd/system/ipmpd@.service")).unwrap();
    let exec: Vec<&str> = unit.lines().filter(|l| l.starts_with("ExecStart=")).collect();
    assert_eq!(exec, ["ExecStart=/usr/sbin/ipmpd --group %i"]);
    // It names its man pages, and the package holds them.
    let docs: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("Documentation="))
        .flat_map(str::split_whitespace)
        .collect();
    for (page, section) in MAN_PAGES
        .iter()
        .filter(|(p, _)| ["ipmpd", "ipmpd.toml"].contains(p))
    {
        assert!(
            docs.contains(&format!("man:{page}({section})").as_str()),
            "the unit's Documentation= names {page}({section}): {docs:?}"
        );
        let man = built()
            .tree
            .join(format!("usr/share/man/man{section}/{page}.{section}.gz"));
        assert!(man.is_file(), "{}", man.display());
    }
}

/// `systemd-analyze verify` accepts the packaged unit as installed, its
/// ExecStart pointed at the packaged binary in the unpacked tree (`--root`
/// would need a whole system under it: sysinit.target, /bin/kill).
#[test]
fn the_packaged_unit_verifies() {
    let b = built();
    let unit = std::fs::read_to_string(b.tree.join("usr/lib/systemd/system/ipmpd@.service")).unwrap();
    let bin = b.tree.join("usr/sbin/ipmpd");
    let dir = b.tree.parent().unwrap().join("unit-verify");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ipmpd@production0.service");
    std::fs::write(&path, unit.replace("/usr/sbin/ipmpd", bin.to_str().unwrap())).unwrap();
    // The man pages are in the package, not installed on this machine.
    run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path));
}

/// The NetworkManager snippet appends to unmanaged-devices ("+=",
/// NetworkManager.conf(5)): a later conf.d file setting the key with "="
/// replaces the administrator's own list.
#[test]
fn the_networkmanager_snippet_appends_to_the_admins_list() {
    let text = std::fs::read_to_string(
        built()
            .tree
            .join("usr/lib/NetworkManager/conf.d/90-ipmpd-unmanaged.conf"),
    )
    .unwrap();
    let settings: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('[') && !l.is_empty())
        .collect();
    assert_eq!(settings, ["unmanaged-devices+=interface-name:ipmp*"], "{text}");
    // The example for the copy in /etc appends too.
    for l in text.lines().filter(|l| l.contains("unmanaged-devices")) {
        assert!(l.contains("unmanaged-devices+="), "{l}");
    }
}

/// The example is a valid group file, and ipmpd does not load it: a group
/// of that name finds no file beside it.
#[test]
fn the_example_is_valid_and_not_loaded() {
    let b = built();
    let ipmpd = b.tree.join("usr/sbin/ipmpd");
    let etc = b.tree.join("etc/ipmpd");
    let out = Command::new(&ipmpd)
        .args(["--check", "--group", "production0", "--config-dir"])
        .arg(&etc)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no members"), "{err}");
    let copy = b.tree.join("production0.toml");
    std::fs::copy(etc.join("production0.toml.example"), &copy).unwrap();
    let ok = stdout(Command::new(&ipmpd).arg("--check").arg("--config").arg(&copy));
    assert!(ok.contains("configuration of group production0 is valid"), "{ok}");
}

/// Runs a maintainer script with systemd present and a `systemctl` that
/// records its arguments; returns them, one call a line.
fn systemctl_calls(script: &str, args: &[&str]) -> String {
    let b = built();
    let dir = b
        .tree
        .parent()
        .unwrap()
        .join(format!("run-{script}-{}", args.join("-")));
    let fake_systemd = dir.join("run-systemd-system");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&fake_systemd).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("calls");
    std::fs::write(&log, "").unwrap();
    for tool in ["systemctl", "deb-systemd-invoke", "deb-systemd-helper"] {
        let fake = bin.join(tool);
        std::fs::write(
            &fake,
            format!("#!/bin/sh\necho \"{tool} $*\" >> '{}'\n", log.display()),
        )
        .unwrap();
        run(Command::new("chmod").arg("755").arg(&fake));
    }
    // The script's test for a running systemd, pointed at a directory that exists.
    let text = std::fs::read_to_string(b.control.join(script)).unwrap();
    assert!(
        text.contains("/run/systemd/system"),
        "{script} checks for systemd"
    );
    let patched = dir.join(script);
    std::fs::write(
        &patched,
        text.replace("/run/systemd/system", fake_systemd.to_str().unwrap()),
    )
    .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    run(Command::new("sh").arg(&patched).args(args).env("PATH", path));
    std::fs::read_to_string(&log).unwrap()
}

#[test]
fn installing_starts_nothing_and_removing_stops_every_group() {
    let control = &built().control;
    for script in ["postinst", "prerm", "postrm"] {
        let mode = std::fs::metadata(control.join(script)).map(|m| {
            use std::os::unix::fs::PermissionsExt;
            m.permissions().mode() & 0o777
        });
        assert_eq!(mode.ok(), Some(0o755), "{script}");
    }
    assert_eq!(
        systemctl_calls("postinst", &["configure"]),
        "systemctl daemon-reload\n"
    );
    assert_eq!(
        systemctl_calls("postinst", &["configure", "0.0.1"]),
        "systemctl daemon-reload\n"
    );
    assert_eq!(
        systemctl_calls("prerm", &["remove"]),
        "systemctl stop ipmpd@*.service\n"
    );
    // An upgrade keeps the groups running.
    assert_eq!(systemctl_calls("prerm", &["upgrade", VERSION]), "");
    assert_eq!(
        systemctl_calls("postrm", &["remove"]),
        "systemctl daemon-reload\n"
    );
    assert_eq!(systemctl_calls("postrm", &["purge"]), "systemctl daemon-reload\n");
}

/// `man -l` renders the page with groff's warnings on; returns the text.
fn render(page: &Path) -> String {
    let out = run(Command::new("man")
        .args(["--warnings", "-l"])
        .arg(page)
        .env("MANWIDTH", MAN_WIDTH)
        .env("LC_ALL", "C.UTF-8")
        .env("MAN_KEEP_FORMATTING", "")
        .env_remove("MANPAGER")
        .env_remove("PAGER"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.trim().is_empty(), "{}: {err}", page.display());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_man_page_renders_without_warnings() {
    for (page, section) in MAN_PAGES {
        let path = built()
            .tree
            .join(format!("usr/share/man/man{section}/{page}.{section}.gz"));
        let text = render(&path);
        let title = format!("{}({section})", page.to_uppercase());
        assert!(
            text.starts_with(&title),
            "{page}: {}",
            &text[..text.len().min(200)]
        );
        for heading in ["NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"] {
            assert!(text.lines().any(|l| l == heading), "{page} has no {heading}");
        }
        // groff writes a hyphen it inserts at a line break as U+2010; the
        // pages turn hyphenation off (`.nh`), so that metric names, flags
        // and paths copy as they are.
        let broken: Vec<&str> = text.lines().filter(|l| l.contains(HYPHENATION)).collect();
        assert!(
            broken.is_empty(),
            "{page} hyphenates words:\n{}",
            broken.join("\n")
        );
    }
}

/// Each command page's OPTIONS section lists every long flag that the
/// packaged binary's `--help` shows.
#[test]
fn each_command_page_lists_every_flag_of_its_help() {
    for cmd in COMMANDS {
        let help = stdout(Command::new(built().tree.join("usr/sbin").join(cmd)).arg("--help"));
        // Option lines are indented by at most OPTION_INDENT; their
        // descriptions (long help) further.
        let flags: Vec<&str> = help
            .lines()
            .filter(|l| {
                let text = l.trim_start();
                text.starts_with('-') && l.len() - text.len() <= OPTION_INDENT
            })
            .filter_map(|l| l.split([' ', ',', '=']).find(|w| w.starts_with("--")))
            .collect();
        assert!(flags.contains(&"--version"), "{cmd} --help:\n{help}");
        let text = render(&built().tree.join(format!("usr/share/man/man8/{cmd}.8.gz")));
        let options: Vec<&str> = text
            .lines()
            .skip_while(|l| *l != "OPTIONS")
            .take_while(|l| l.is_empty() || l.starts_with(' ') || *l == "OPTIONS")
            .collect();
        for flag in flags {
            assert!(
                options
                    .iter()
                    .any(|l| l.trim_start().split([' ', ',']).any(|w| w == flag)),
                "{cmd}.8 does not list {flag} under OPTIONS:\n{}",
                options.join("\n")
            );
        }
    }
}

#[test]
fn completions_load_in_their_shells() {
    let tree = &built().tree;
    for cmd in COMMANDS {
        let bash = tree.join("usr/share/bash-completion/completions").join(cmd);
        run(Command::new("bash").arg("-n").arg(&bash));
        let text = std::fs::read_to_string(&bash).unwrap();
        assert!(
            text.contains(&format!("complete -F _{cmd}")),
            "{cmd} bash completion"
        );
        let zsh = std::fs::read_to_string(
            tree.join("usr/share/zsh/vendor-completions")
                .join(format!("_{cmd}")),
        )
        .unwrap();
        assert!(
            zsh.starts_with(&format!("#compdef {cmd}")),
            "{cmd} zsh completion"
        );
        let fish = std::fs::read_to_string(
            tree.join("usr/share/fish/vendor_completions.d")
                .join(format!("{cmd}.fish")),
        )
        .unwrap();
        assert!(
            fish.contains(&format!("complete -c {cmd}")),
            "{cmd} fish completion"
        );
    }
}

/// ipmpadm's page describes every command its `--help` lists.
#[test]
fn the_ipmpadm_page_describes_every_command() {
    let help = stdout(Command::new(built().tree.join("usr/sbin/ipmpadm")).arg("--help"));
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(commands.contains(&"offline"), "ipmpadm --help:\n{help}");
    let text = render(&built().tree.join("usr/share/man/man8/ipmpadm.8.gz"));
    let described: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "COMMANDS")
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .collect();
    for cmd in commands {
        assert!(
            described.iter().any(|l| l.split_whitespace().next() == Some(cmd)),
            "ipmpadm.8 does not describe {cmd} under COMMANDS:\n{}",
            described.join("\n")
        );
    }
}
