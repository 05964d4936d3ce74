//! The drawing step of scripts/failover-plot.sh (`--from TSV`: no lab, no
//! measurement): from a small fixture it writes an SVG that parses as XML
//! and names the three streams; a TSV without one of them is refused. The
//! measurement itself is a benchmark (docs/BENCHMARKS.md), not a test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The legend titles the picture must show, one per stream.
const SERIES: [&str; 3] = ["kernel path, no event", "ipmpd, carrier cut", "ipmpd, silent cut"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ipmpd-failover-plot-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn draw(tsv: &Path, svg: &Path) -> Output {
    Command::new(root().join("scripts/failover-plot.sh"))
        .arg("--from")
        .arg(tsv)
        .arg(svg)
        .output()
        .expect("run scripts/failover-plot.sh")
}

/// Parses FILE with Python's XML parser; its error text when it fails.
fn xml_error(file: &Path) -> Option<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); \
             sys.exit(0 if r.tag.endswith('svg') else 'root element ' + r.tag)",
        ])
        .arg(file)
        .output()
        .expect("run python3");
    (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn draws_the_three_streams_from_a_tsv() {
    let dir = scratch("ok");
    let svg = dir.join("failover.svg");
    let out = draw(&root().join("tests/data/failover-plot.tsv"), &svg);
    assert!(
        out.status.success(),
        "failover-plot.sh --from failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(e) = xml_error(&svg) {
        panic!("{} is not an SVG document: {e}", svg.display());
    }
    let text = std::fs::read_to_string(&svg).expect("read the SVG");
    for s in SERIES {
        assert!(text.contains(s), "the picture has no series {s:?}");
    }
    // The event marks and the caption (from the TSV's comment lines).
    for s in ["carrier cut", "silent cut", "kernel fixture", "2 vCPUs"] {
        assert!(text.contains(s), "the picture lacks {s:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn refuses_a_tsv_without_a_stream() {
    let dir = scratch("missing");
    let tsv = dir.join("two-streams.tsv");
    let fixture = std::fs::read_to_string(root().join("tests/data/failover-plot.tsv")).expect("read fixture");
    // Drop the last column (silent) from every data line and the header.
    let cut: String = fixture
        .lines()
        .map(|l| match l.rsplit_once('\t') {
            Some((head, _)) if !l.starts_with('#') => format!("{head}\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    std::fs::write(&tsv, cut).expect("write TSV");
    let out = draw(&tsv, &dir.join("failover.svg"));
    assert!(!out.status.success(), "a TSV without the silent stream was drawn");
    let _ = std::fs::remove_dir_all(&dir);
}
