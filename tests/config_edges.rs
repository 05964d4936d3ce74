//! Configuration edges through the real binary, with no lab: `ipmpd --check`
//! refuses what the start refuses, with the same words and exit status.
//! Every configuration here is invalid, so nothing on the machine is touched
//! (validation runs before the daemon looks at the system).

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ipmpd");
/// Exit status of a refused configuration.
const REFUSED: i32 = 2;

/// A scratch directory for one test: group files, config and run dirs.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("ipmpd-edges-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("run")).unwrap();
        Scratch(d)
    }
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    /// Runs ipmpd with `args`, isolated from /etc/ipmpd and /run/ipmpd.
    fn run(&self, args: &[&str]) -> (i32, String) {
        let out = Command::new(BIN)
            .args(args)
            .env("IPMPD_CONFIG_DIR", &self.0)
            .env("IPMPD_RUN_DIR", self.0.join("run"))
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

const MEMBERS: &str = "[[member]]\nname = \"ipmpedge0\"\ntest_address = \"192.0.2.201/24\"\n\
                       [[member]]\nname = \"ipmpedge1\"\ntest_address = \"192.0.2.201/24\"\n";

#[test]
fn duplicate_test_addresses_fail_check_exactly_as_they_fail_the_start() {
    let s = Scratch::new("duptest");
    let f = s.file("edge0.toml", &format!("data = [\"192.0.2.200/24\"]\n{MEMBERS}"));
    let (check_code, check_err) = s.run(&["--check", "--config", path(&f)]);
    let (start_code, start_err) = s.run(&["--group", "edge0", "--config", path(&f)]);
    assert_eq!(check_code, REFUSED, "{check_err}");
    assert_eq!(start_code, REFUSED, "{start_err}");
    assert_eq!(check_err, start_err);
    // Named, and pointed at the second member's line.
    assert!(
        check_err.contains(
            "edge0.toml: line 7: test address 192.0.2.201 is given twice (members ipmpedge0 and ipmpedge1)"
        ),
        "{check_err}"
    );
    // The same from the command line alone.
    let flags = [
        "--group",
        "edge1",
        "--member",
        "ipmpedge0",
        "--member",
        "ipmpedge1",
        "--test-address",
        "ipmpedge0=192.0.2.201/24",
        "--test-address",
        "ipmpedge1=192.0.2.201/24",
    ];
    let (code, err) = s.run(&[&["--check"], &flags[..]].concat());
    assert_eq!(code, REFUSED);
    assert!(err.contains("test address 192.0.2.201 is given twice"), "{err}");
    assert_eq!(s.run(&flags), (code, err));
}

#[test]
fn bad_targets_are_refused_from_the_file_and_from_the_flags() {
    let s = Scratch::new("targets");
    for (target, why) in [
        ("224.0.0.1", "not a unicast host address"),
        ("0.0.0.0", "not a unicast host address"),
        ("255.255.255.255", "not a unicast host address"),
        ("192.0.2.200", "a data address of the group"),
        ("192.0.2.201", "the test address of ipmpedge0"),
        ("192.0.2.255", "the broadcast address of 192.0.2.200/24"),
    ] {
        let f = s.file(
            "edge2.toml",
            &format!(
                "data = [\"192.0.2.200/24\"]\ntargets = [\"192.0.2.1\", \"{target}\"]\n\
                 [[member]]\nname = \"ipmpedge0\"\ntest_address = \"192.0.2.201/24\"\n"
            ),
        );
        let (code, err) = s.run(&["--check", "--config", path(&f)]);
        assert_eq!(code, REFUSED, "{target}: {err}");
        assert!(
            err.contains(&format!("invalid probe target {target}")) && err.contains(why),
            "{target}: {err}"
        );
        assert_eq!(s.run(&["--group", "edge2", "--config", path(&f)]), (code, err));
        let flags = [
            "--group",
            "edge3",
            "--data",
            "192.0.2.200/24",
            "--member",
            "ipmpedge0",
            "--test-address",
            "ipmpedge0=192.0.2.201/24",
            "--target",
            target,
        ];
        let (code, err) = s.run(&[&["--check"], &flags[..]].concat());
        assert_eq!(code, REFUSED, "{target}: {err}");
        assert!(err.contains(&format!("invalid probe target {target}")), "{err}");
        assert_eq!(s.run(&flags), (code, err));
    }
}

#[test]
fn file_numbers_obey_the_command_line_bounds() {
    let s = Scratch::new("numbers");
    for (line, expect) in [
        ("garp_count = 0", "invalid garp_count 0: expected 1 to 100"),
        ("garp_count = 101", "invalid garp_count 101: expected 1 to 100"),
        (
            "failure_detection_time = 86400001",
            "invalid duration 86400001: more than the maximum of 86400 s",
        ),
        (
            "link_poll = 0",
            "invalid duration 0: a duration of 0 is not allowed",
        ),
    ] {
        let f = s.file(
            "edge4.toml",
            &format!("{line}\n[[member]]\nname = \"ipmpedge0\"\n"),
        );
        let (code, err) = s.run(&["--check", "--config", path(&f)]);
        assert_eq!(code, REFUSED, "{line}: {err}");
        assert!(
            err.contains("edge4.toml") && err.contains("line 1") && err.contains(expect),
            "{line}: {err}"
        );
    }
    // The command line's own bounds, for comparison.
    for n in ["0", "101"] {
        let (code, err) = s.run(&[
            "--check",
            "--group",
            "edge5",
            "--member",
            "ipmpedge0",
            "--garp-count",
            n,
        ]);
        assert_eq!(code, REFUSED, "{err}");
        assert!(err.contains("1..=100"), "{err}");
    }
    let (code, err) = s.run(&[
        "--check",
        "--group",
        "edge5",
        "--member",
        "ipmpedge0",
        "--fdt",
        "86400001",
    ]);
    assert_eq!(code, REFUSED, "{err}");
    assert!(err.contains("more than the maximum of 86400 s"), "{err}");
}
