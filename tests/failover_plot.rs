//! The drawing step of scripts/failover-plot.sh (`--from TSV`: no lab, no
//! measurement): from a small fixture it writes an SVG that parses as XML
//! and names the three streams, with the carrier and the silent cut's event
//! shown as a shaded band; a TSV without one of them, or with a malformed
//! band, is refused. The measurement itself is a benchmark
//! (docs/BENCHMARKS.md), not a test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The event bands' fill as gnuplot's SVG writes it (BAND_COLOUR of
/// scripts/failover-plot.sh, #fdb863).
const BAND_FILL: &str = "fill = 'rgb(253, 184,  99)'";
/// The fixture's bands, as the panels label them.
const BAND_LABELS: [&str; 2] = [
    "carrier cut, between 0.0 and 27.6 ms (shaded)",
    "silent cut, between 0.0 and 86.6 ms (shaded)",
];

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
    // Each event is an interval: a shaded band in the carrier and the
    // silent panel (from the TSV's "# band" lines), none for the kernel.
    assert_eq!(text.matches(BAND_FILL).count(), 2, "two event bands");
    for s in BAND_LABELS {
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

/// A band line that is not two numbers is refused: it would reach gnuplot.
#[test]
fn refuses_a_malformed_band() {
    let dir = scratch("band");
    let tsv = dir.join("bad-band.tsv");
    let fixture = std::fs::read_to_string(root().join("tests/data/failover-plot.tsv")).expect("read fixture");
    assert!(
        fixture.contains("# band silent: 0.0 86.6\n"),
        "the fixture has a silent band"
    );
    let bad = fixture.replace(
        "# band silent: 0.0 86.6\n",
        "# band silent: 0.0 86.6\"; system \"true\n",
    );
    std::fs::write(&tsv, bad).expect("write TSV");
    let out = draw(&tsv, &dir.join("failover.svg"));
    assert!(!out.status.success(), "a malformed band was drawn");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("band silent"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
