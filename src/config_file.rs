//! The configuration file (`/etc/ipmpd/<group>.toml`): the same model as
//! the command line, which overrides it. Parsing is strict (unknown keys
//! are errors) and every error names the file, the line and the field.

use crate::config::{
    check_garp_count, duration_from_ms, parse_data_addr, parse_duration, parse_yes_no, DataAddr,
};
use serde::de::{self, Deserializer};
use serde::Deserialize;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

/// Default directory of group files, and the variables that override it.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/ipmpd";
pub const CONFIG_DIR_ENV: &str = "IPMPD_CONFIG_DIR";

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub interface: Option<String>,
    #[serde(default)]
    pub data: Vec<DataAddr>,
    #[serde(default, rename = "member")]
    pub members: Vec<FileMember>,
    pub probe: Option<ProbeName>,
    #[serde(default)]
    pub targets: Vec<Ipv4Addr>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub failure_detection_time: Option<Duration>,
    #[serde(default, deserialize_with = "opt_failback")]
    pub failback: Option<bool>,
    #[serde(default, deserialize_with = "opt_garp_count")]
    pub garp_count: Option<u32>,
    pub link_flap_limit: Option<u32>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub link_poll: Option<Duration>,
    pub outbound: Option<OutboundName>,
    #[serde(default, rename = "route")]
    pub routes: Vec<FileRoute>,
    /// Let any local user read the status (ipmpstat); changes stay root-only.
    pub status_readable_by_all: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMember {
    pub name: String,
    #[serde(default)]
    pub standby: bool,
    #[serde(default)]
    pub optional: bool,
    pub test_address: Option<DataAddr>,
}

/// A static route through the group interface, added whenever it is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRoute {
    pub destination: DataAddr,
    pub gateway: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeName {
    Icmp,
    Arp,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboundName {
    Flow,
    Bound,
}

impl<'de> Deserialize<'de> for DataAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_data_addr(&s).map_err(de::Error::custom)
    }
}

/// "10s", "100ms", or a number of milliseconds.
fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Ms(u64),
        Text(String),
    }
    match Raw::deserialize(d)
        .map_err(|_| de::Error::custom("expected a duration: \"10s\", \"100ms\" or milliseconds"))?
    {
        Raw::Ms(ms) => duration_from_ms(ms).map(Some).map_err(de::Error::custom),
        Raw::Text(s) => parse_duration(&s).map(Some).map_err(de::Error::custom),
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

/// Reads and parses a group file; the error text starts with the path and
/// carries toml's line, column and the offending line.
pub fn load(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../docs/production0.toml");

    #[test]
    fn the_sample_parses() {
        let c: FileConfig = toml::from_str(SAMPLE).unwrap();
        assert_eq!(c.interface.as_deref(), Some("production0"));
        assert_eq!(c.members.len(), 3);
        assert!(c.members[2].standby);
        assert_eq!(c.failure_detection_time, Some(Duration::from_secs(10)));
        assert_eq!(c.failback, Some(true));
    }

    #[test]
    fn every_field_wrong_in_turn_is_named_with_its_line() {
        let cases = [
            ("interfase = \"x\"", "unknown field `interfase`"),
            ("data = [\"192.0.2.300/24\"]", "192.0.2.300/24"),
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
        ];
        for (text, expect) in cases {
            let e = toml::from_str::<FileConfig>(text).unwrap_err().to_string();
            assert!(e.contains(expect), "{text}: {e}");
            assert!(e.contains("line"), "{text}: no line in {e}");
        }
    }
}
