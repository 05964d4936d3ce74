//! The group file (`/etc/ipmpd/<group>.toml`): its TOML schema and its
//! errors. Parsing is strict (unknown keys are errors); the values are
//! checked by the same parsers as the flags'. The items a later check may
//! refuse keep their place in the text ([`Spanned`]), so that the refusal
//! names the line.

use super::model::{
    check_garp_count, duration_from_ms, parse_data_addr, parse_duration, parse_if_addr, parse_yes_no,
    DataAddr, IfAddr, Outbound, ProbeMode,
};
use serde::de::{self, Deserializer};
use serde::Deserialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
pub use toml::Spanned;

/// Default directory of group files, and the variables that override it.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/ipmpd";
pub const CONFIG_DIR_ENV: &str = "IPMPD_CONFIG_DIR";

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub interface: Option<Spanned<String>>,
    #[serde(default)]
    pub data: Vec<Spanned<IfAddr>>,
    #[serde(default, rename = "member")]
    pub members: Vec<FileMember>,
    pub probe: Option<Spanned<ProbeMode>>,
    #[serde(default)]
    pub targets: Vec<Spanned<IpAddr>>,
    pub failure_detection_time: Option<FileDuration>,
    #[serde(default, deserialize_with = "opt_failback")]
    pub failback: Option<bool>,
    #[serde(default, deserialize_with = "opt_garp_count")]
    pub garp_count: Option<u32>,
    pub link_flap_limit: Option<u32>,
    pub link_poll: Option<Spanned<FileDuration>>,
    pub outbound: Option<Outbound>,
    #[serde(default, rename = "route")]
    pub routes: Vec<FileRoute>,
    /// Let any local user read the status (ipmpstat); changes stay root-only.
    pub status_readable_by_all: Option<bool>,
    /// Inbound TCP/UDP frames into the group interface in the kernel
    /// (`--inbound-fastpath`).
    pub inbound_fastpath: Option<bool>,
    /// Outbound TCP/UDP frames out of their member in the kernel
    /// (`--outbound-fastpath`).
    pub outbound_fastpath: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMember {
    pub name: Spanned<String>,
    #[serde(default)]
    pub standby: bool,
    #[serde(default)]
    pub optional: bool,
    pub test_address: Option<Spanned<DataAddr>>,
}

/// A static route through the group interface, added whenever it is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRoute {
    #[serde(deserialize_with = "route_dest")]
    pub destination: IfAddr,
    pub gateway: Option<IpAddr>,
}

impl<'de> Deserialize<'de> for IfAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_if_addr(&s).map_err(de::Error::custom)
    }
}

/// A route's destination: a prefix, or the default route.
fn route_dest<'de, D: Deserializer<'de>>(d: D) -> Result<IfAddr, D::Error> {
    let s = String::deserialize(d)?;
    super::model::parse_route_dest(&s).map_err(de::Error::custom)
}

impl<'de> Deserialize<'de> for DataAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_data_addr(&s).map_err(de::Error::custom)
    }
}

/// A duration as the file gives it: "10s", "100ms", or a number of
/// milliseconds, within the flags' bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileDuration(pub Duration);

impl<'de> Deserialize<'de> for FileDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Ms(u64),
            Text(String),
        }
        let d = match Raw::deserialize(d)
            .map_err(|_| de::Error::custom("expected a duration: \"10s\", \"100ms\" or milliseconds"))?
        {
            Raw::Ms(ms) => duration_from_ms(ms),
            Raw::Text(s) => parse_duration(&s),
        };
        d.map(FileDuration).map_err(de::Error::custom)
    }
}

/// A count within the command line's bounds.
fn opt_garp_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let n = u32::deserialize(d)?;
    check_garp_count(n).map(Some).map_err(de::Error::custom)
}

/// true/false, or "yes"/"no" as in /etc/default/mpathd.
fn opt_failback<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bool(bool),
        Text(String),
    }
    match Raw::deserialize(d).map_err(|_| de::Error::custom("expected yes, no, true or false"))? {
        Raw::Bool(b) => Ok(Some(b)),
        Raw::Text(s) => parse_yes_no(&s)
            .map(Some)
            .map_err(|e| de::Error::custom(format!("{e}: expected yes or no"))),
    }
}

/// A place in a file's text, both counted from 1; the column in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` of `text` (a span's start, as toml
    /// gives it); past the end counts as the end.
    pub fn of(text: &str, offset: usize) -> Position {
        let before = &text.as_bytes()[..offset.min(text.len())];
        let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        // Characters, not bytes: UTF-8 continuation bytes do not count.
        let chars = before[line_start..]
            .iter()
            .filter(|&&b| b & UTF8_CONTINUATION_MASK != UTF8_CONTINUATION)
            .count();
        Position {
            line: before.iter().filter(|&&b| b == b'\n').count() + 1,
            column: chars + 1,
        }
    }
}

/// A UTF-8 continuation byte is 0b10xx_xxxx.
const UTF8_CONTINUATION_MASK: u8 = 0b1100_0000;
const UTF8_CONTINUATION: u8 = 0b1000_0000;

/// A group file that cannot be used as it is.
#[derive(Debug)]
pub enum FileError {
    /// It cannot be read.
    Read { path: PathBuf, error: std::io::Error },
    /// It is not a group file: bad TOML, an unknown key, a bad value.
    /// `at` comes from toml's span of the error; the text is toml's, which
    /// shows the line and marks the place.
    Parse {
        path: PathBuf,
        at: Option<Position>,
        error: Box<toml::de::Error>,
    },
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileError::Read { path, error } => write!(f, "{}: {error}", path.display()),
            FileError::Parse { path, error, .. } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for FileError {}

/// A group file as read: where it is, its text (for the positions of later
/// refusals) and its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFile {
    pub path: PathBuf,
    pub text: String,
    pub config: FileConfig,
}

impl GroupFile {
    /// The position of a span's start in this file.
    pub fn position(&self, span: &std::ops::Range<usize>) -> Position {
        Position::of(&self.text, span.start)
    }
}

/// Parses a group file's text; `path` names it in the error.
pub fn parse(path: &Path, text: String) -> Result<GroupFile, FileError> {
    match toml::from_str::<FileConfig>(&text) {
        Ok(config) => Ok(GroupFile {
            path: path.to_path_buf(),
            text,
            config,
        }),
        Err(error) => Err(FileError::Parse {
            path: path.to_path_buf(),
            at: error.span().map(|s| Position::of(&text, s.start)),
            error: Box::new(error),
        }),
    }
}

/// Reads and parses a group file.
pub fn load(path: &Path) -> Result<GroupFile, FileError> {
    let text = std::fs::read_to_string(path).map_err(|error| FileError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../docs/production0.toml");

    #[test]
    fn the_sample_parses() {
        let f = parse(Path::new("production0.toml"), SAMPLE.into()).unwrap();
        let c = &f.config;
        assert_eq!(
            c.interface.as_ref().map(|i| i.get_ref().as_str()),
            Some("production0")
        );
        assert_eq!(c.members.len(), 3);
        assert!(c.members[2].standby);
        assert_eq!(
            c.failure_detection_time,
            Some(FileDuration(Duration::from_secs(10)))
        );
        assert_eq!(c.failback, Some(true));
        assert_eq!(c.probe.as_ref().map(|p| *p.get_ref()), Some(ProbeMode::Icmp));
        assert_eq!(c.outbound, Some(Outbound::Flow));
        // The spans kept for later refusals point at the values' lines.
        let line = |needle: &str| SAMPLE.lines().position(|l| l.contains(needle)).unwrap() + 1;
        assert_eq!(
            f.position(&c.members[1].name.span()).line,
            line("name = \"e1000g1\"")
        );
        assert_eq!(
            f.position(&c.members[2].test_address.as_ref().unwrap().span())
                .line,
            line("192.0.2.203/24")
        );
        assert_eq!(f.position(&c.targets[0].span()).line, line("targets ="));
    }

    #[test]
    fn ipv6_data_addresses_are_read_beside_ipv4_ones() {
        let c = parse(
            Path::new("g.toml"),
            "data = [\"192.0.2.200/24\", \"2001:db8::200/64\"]".into(),
        )
        .unwrap();
        let data: Vec<String> = c.config.data.iter().map(|d| d.get_ref().to_string()).collect();
        assert_eq!(data, ["192.0.2.200/24", "2001:db8::200/64"]);
    }

    #[test]
    fn every_field_wrong_in_turn_is_named_with_its_line() {
        let cases = [
            ("interfase = \"x\"", "unknown field `interfase`"),
            ("data = [\"192.0.2.300/24\"]", "192.0.2.300/24"),
            ("data = [\"2001:db8::200/129\"]", "2001:db8::200/129"),
            ("data = [\"ff02::1/64\"]", "ff02::1/64"),
            ("probe = \"tcp\"", "unknown variant `tcp`"),
            ("targets = [\"nope\"]", "invalid"),
            ("failure_detection_time = \"10 minutes\"", "10 minutes"),
            ("failure_detection_time = 0", "0 is not allowed"),
            ("failback = \"maybe\"", "Invalid value for FAILBACK maybe"),
            ("garp_count = \"two\"", "invalid type"),
            ("garp_count = 0", "invalid garp_count 0: expected 1 to 100"),
            ("garp_count = 101", "invalid garp_count 101: expected 1 to 100"),
            ("failure_detection_time = 86400001", "invalid duration 86400001"),
            (
                "link_poll = 9223372036854775807",
                "invalid duration 9223372036854775807",
            ),
            ("link_flap_limit = -1", "invalid value"),
            ("outbound = \"random\"", "unknown variant `random`"),
            (
                "[[member]]\nname = \"e0\"\ntest_address = \"x\"",
                "invalid data address",
            ),
            ("[[member]]\nnmae = \"e0\"", "unknown field `nmae`"),
            ("[[route]]\ndestination = \"198.51.100.0/33\"", "prefix length 33"),
            (
                "[[route]]\ndestination = \"192.0.2.0/0\"",
                "a /0 destination is the default route",
            ),
        ];
        for (text, expect) in cases {
            let err = parse(Path::new("g.toml"), text.into()).unwrap_err();
            let e = err.to_string();
            assert!(e.starts_with("g.toml: "), "{text}: {e}");
            assert!(e.contains(expect), "{text}: {e}");
            assert!(e.contains("line"), "{text}: no line in {e}");
            // The position is toml's span, on the line of the bad key or value.
            let FileError::Parse { at: Some(at), .. } = err else {
                panic!("{text}: no position in {e}");
            };
            assert_eq!(at.line, text.lines().count(), "{text}: {e}");
            assert!(
                e.contains(&format!("at line {}, column {}", at.line, at.column)),
                "{text}: {at:?} {e}"
            );
        }
    }

    #[test]
    fn positions_count_lines_and_characters_from_one() {
        let text = "a = 1\nb = \"\u{e9}\u{e9}x\"\n";
        assert_eq!(Position::of(text, 0), Position { line: 1, column: 1 });
        assert_eq!(Position::of(text, 4), Position { line: 1, column: 5 });
        assert_eq!(Position::of(text, 6), Position { line: 2, column: 1 });
        // After two two-byte characters: the column counts characters.
        let x = text.find('x').unwrap();
        assert_eq!(Position::of(text, x), Position { line: 2, column: 8 });
        // Past the end, and inside a character: no panic.
        assert_eq!(Position::of(text, usize::MAX).line, 3);
        assert_eq!(Position::of(text, x - 1).line, 2);
        assert_eq!(Position::of("", 5), Position { line: 1, column: 1 });
    }

    #[test]
    fn an_unreadable_file_is_named() {
        let e = load(Path::new("/nonexistent/ipmpd/g.toml")).unwrap_err();
        assert!(matches!(e, FileError::Read { .. }));
        assert!(e.to_string().starts_with("/nonexistent/ipmpd/g.toml: "), "{e}");
    }
}
