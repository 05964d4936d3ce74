//! The group's configuration model. Command-line flags fill it today; the
//! configuration file maps onto the same structure.

use crate::datapath::plan::Outbound;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// Default name of the group interface.
pub const DEFAULT_INTERFACE: &str = "ipmp0";
/// Default directory for runtime files (pid file, control socket).
pub const DEFAULT_RUN_DIR: &str = "/run/ipmpd";
pub const RUN_DIR_ENV: &str = "IPMPD_RUN_DIR";
/// Linux interface names are at most 15 bytes (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataAddr {
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
}

impl std::fmt::Display for DataAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberConfig {
    pub name: String,
    /// Joins when it appears instead of being required at start.
    pub optional: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    pub group: String,
    pub interface: String,
    pub data: Vec<DataAddr>,
    pub members: Vec<MemberConfig>,
    pub outbound: Outbound,
    /// Take members that still carry addresses or routes.
    pub force: bool,
    pub run_dir: PathBuf,
}

/// Parses `ADDR/PREFIX` (a bare address means /32, as with `ip addr add`).
pub fn parse_data_addr(s: &str) -> Result<DataAddr, String> {
    let bad = || format!("invalid data address {s:?}: expected IPv4ADDRESS/PREFIX, e.g. 192.0.2.200/24");
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, p.parse::<u8>().map_err(|_| bad())?),
        None => (s, 32),
    };
    let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
    if p > 32 {
        return Err(format!(
            "invalid data address {s:?}: prefix length {p} is more than 32"
        ));
    }
    if addr.is_unspecified() || addr.is_multicast() || addr.is_broadcast() || addr.is_loopback() {
        return Err(format!("invalid data address {s:?}: not a unicast host address"));
    }
    Ok(DataAddr { addr, prefix_len: p })
}

/// Checks a Linux interface name the way the kernel does (dev_valid_name).
pub fn check_ifname(what: &str, s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > IFNAME_MAX {
        return Err(format!("invalid {what} {s:?}: must be 1 to {IFNAME_MAX} bytes"));
    }
    if s == "." || s == ".." || s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        return Err(format!("invalid {what} {s:?}: no '/', ':' or whitespace allowed"));
    }
    Ok(())
}

impl GroupConfig {
    /// Checks everything that can be checked without touching the system.
    pub fn validate(&self) -> Result<(), String> {
        if self.group.is_empty() || self.group.len() > 31 || self.group.contains(['/', ' ', '\0']) {
            return Err(format!(
                "invalid group name {:?}: 1 to 31 characters, no '/' or spaces",
                self.group
            ));
        }
        check_ifname("interface name", &self.interface)?;
        if self.members.is_empty() {
            return Err("no members: give at least one --member IF".into());
        }
        if self.members.len() >= usize::from(crate::datapath::buckets::NO_SLOT) {
            return Err(format!("too many members ({})", self.members.len()));
        }
        for (i, m) in self.members.iter().enumerate() {
            check_ifname("member name", &m.name)?;
            if m.name == self.interface {
                return Err(format!("member {} is the group interface itself", m.name));
            }
            if self.members[..i].iter().any(|o| o.name == m.name) {
                return Err(format!("member {} is given twice", m.name));
            }
        }
        for (i, d) in self.data.iter().enumerate() {
            if self.data[..i].iter().any(|o| o.addr == d.addr) {
                return Err(format!("data address {} is given twice", d.addr));
            }
        }
        Ok(())
    }

    pub fn pid_file(&self) -> PathBuf {
        self.run_dir.join(format!("{}.pid", self.group))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> GroupConfig {
        GroupConfig {
            group: "production0".into(),
            interface: "ipmp0".into(),
            data: vec![parse_data_addr("192.0.2.200/24").unwrap()],
            members: vec![
                MemberConfig {
                    name: "m0".into(),
                    optional: false,
                },
                MemberConfig {
                    name: "m1".into(),
                    optional: true,
                },
            ],
            outbound: Outbound::Flow,
            force: false,
            run_dir: DEFAULT_RUN_DIR.into(),
        }
    }

    #[test]
    fn data_addresses_parse_and_errors_name_the_value() {
        assert_eq!(
            parse_data_addr("192.0.2.200/24").unwrap(),
            DataAddr {
                addr: Ipv4Addr::new(192, 0, 2, 200),
                prefix_len: 24
            }
        );
        assert_eq!(parse_data_addr("192.0.2.9").unwrap().prefix_len, 32);
        for bad in [
            "192.0.2.300/24",
            "192.0.2.1/33",
            "x/24",
            "224.0.0.1/24",
            "0.0.0.0/0",
            "",
        ] {
            let e = parse_data_addr(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn validation_names_the_problem() {
        assert!(cfg().validate().is_ok());
        let mut c = cfg();
        c.members.push(MemberConfig {
            name: "m0".into(),
            optional: false,
        });
        assert!(c.validate().unwrap_err().contains("m0 is given twice"));
        let mut c = cfg();
        c.interface = "a-very-long-interface".into();
        assert!(c.validate().unwrap_err().contains("a-very-long-interface"));
        let mut c = cfg();
        c.members.clear();
        assert!(c.validate().unwrap_err().contains("no members"));
        let mut c = cfg();
        c.members[0].name = "ipmp0".into();
        assert!(c.validate().unwrap_err().contains("group interface"));
        let mut c = cfg();
        c.data.push(c.data[0]);
        assert!(c.validate().unwrap_err().contains("192.0.2.200"));
    }
}
