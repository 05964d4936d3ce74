//! ipmpstat's tables, as in.mpathd's ipmpstat prints them: fixed column
//! widths, left-justified, last column unpadded, "--" for empty fields.

use super::GroupStatus;

/// Column widths of `-i` (INTERFACE ACTIVE GROUP FLAGS LINK PROBE STATE).
const I_WIDTHS: [usize; 6] = [12, 8, 12, 10, 10, 10];
/// Column widths of `-g` (GROUP GROUPNAME STATE FDT INTERFACES).
const G_WIDTHS: [usize; 4] = [12, 12, 10, 10];
/// Column widths of `-a` (ADDRESS STATE GROUP INBOUND OUTBOUND).
const A_WIDTHS: [usize; 4] = [24, 8, 12, 12];
/// Column widths of `-t` (INTERFACE MODE TESTADDR TARGETS).
const T_WIDTHS: [usize; 3] = [12, 10, 22];
const EMPTY: &str = "--";

fn row(widths: &[usize], fields: &[String]) -> String {
    let mut s = String::new();
    for (i, f) in fields.iter().enumerate() {
        let f = if f.is_empty() { EMPTY } else { f.as_str() };
        match widths.get(i) {
            // At least one space between columns even when a field overflows.
            Some(&w) => s.push_str(&format!("{f:<w$}", w = w.max(f.len() + 1))),
            None => s.push_str(f),
        }
    }
    s.trim_end().to_string()
}

fn yes_no(b: bool) -> String {
    (if b { "yes" } else { "no" }).to_string()
}

pub fn interfaces(groups: &[GroupStatus]) -> String {
    let mut out = vec![row(
        &I_WIDTHS,
        &["INTERFACE", "ACTIVE", "GROUP", "FLAGS", "LINK", "PROBE", "STATE"].map(String::from),
    )];
    for g in groups {
        for m in &g.members {
            out.push(row(
                &I_WIDTHS,
                &[
                    m.name.clone(),
                    yes_no(m.active),
                    g.interface.clone(),
                    m.flags.clone(),
                    m.link.clone(),
                    m.probe.clone(),
                    m.state.clone(),
                ],
            ));
        }
    }
    out.join("\n") + "\n"
}

/// Active members plain, then inactive ones in parentheses, then unusable
/// ones in brackets: "rge0 e1000g1 (e1000g2) [e1000g0]".
pub fn interface_list(g: &GroupStatus) -> String {
    let active = g.members.iter().filter(|m| m.active).map(|m| m.name.clone());
    let inactive = g
        .members
        .iter()
        .filter(|m| !m.active && m.inactive)
        .map(|m| format!("({})", m.name));
    let unusable = g
        .members
        .iter()
        .filter(|m| !m.active && !m.inactive)
        .map(|m| format!("[{}]", m.name));
    active
        .chain(inactive)
        .chain(unusable)
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn fdt(g: &GroupStatus) -> String {
    g.fdt_ms
        .map(|ms| format!("{:.2}s", ms as f64 / 1000.0))
        .unwrap_or_default()
}

pub fn groups(groups: &[GroupStatus]) -> String {
    let mut out = vec![row(
        &G_WIDTHS,
        &["GROUP", "GROUPNAME", "STATE", "FDT", "INTERFACES"].map(String::from),
    )];
    for g in groups {
        out.push(row(
            &G_WIDTHS,
            &[
                g.interface.clone(),
                g.group.clone(),
                g.state.clone(),
                fdt(g),
                interface_list(g),
            ],
        ));
    }
    out.join("\n") + "\n"
}

pub fn addresses(groups: &[GroupStatus]) -> String {
    let mut out = vec![row(
        &A_WIDTHS,
        &["ADDRESS", "STATE", "GROUP", "INBOUND", "OUTBOUND"].map(String::from),
    )];
    for g in groups {
        for a in &g.addresses {
            out.push(row(
                &A_WIDTHS,
                &[
                    a.address.clone(),
                    a.state.clone(),
                    g.interface.clone(),
                    a.inbound.clone().unwrap_or_default(),
                    a.outbound.join(" "),
                ],
            ));
        }
    }
    out.join("\n") + "\n"
}

pub fn targets(groups: &[GroupStatus]) -> String {
    let mut out = vec![row(
        &T_WIDTHS,
        &["INTERFACE", "MODE", "TESTADDR", "TARGETS"].map(String::from),
    )];
    for g in groups {
        for m in &g.members {
            out.push(row(
                &T_WIDTHS,
                &[
                    m.name.clone(),
                    m.probe_mode.clone(),
                    m.test_address.clone().unwrap_or_default(),
                    m.targets.join(" "),
                ],
            ));
        }
    }
    out.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{AddressStatus, MemberStatus};

    fn member(name: &str, active: bool, inactive: bool, flags: &str, state: &str) -> MemberStatus {
        MemberStatus {
            name: name.into(),
            active,
            flags: flags.into(),
            link: "up".into(),
            probe: "disabled".into(),
            state: state.into(),
            probe_mode: "disabled".into(),
            test_address: None,
            targets: vec![],
            inactive,
        }
    }

    fn tutorial() -> GroupStatus {
        GroupStatus {
            interface: "production0".into(),
            group: "production0".into(),
            state: "degraded".into(),
            fdt_ms: None,
            members: vec![
                member("e1000g0", false, false, "-------", "failed"),
                member("e1000g1", true, false, "--mb---", "ok"),
                member("rge0", false, true, "is-----", "ok"),
            ],
            addresses: vec![AddressStatus {
                address: "192.0.2.200".into(),
                state: "up".into(),
                inbound: Some("e1000g1".into()),
                outbound: vec!["e1000g1".into()],
            }],
        }
    }

    #[test]
    fn interfaces_table_matches_the_original_layout() {
        let t = interfaces(&[tutorial()]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "INTERFACE   ACTIVE  GROUP       FLAGS     LINK      PROBE     STATE"
        );
        assert_eq!(
            lines[1],
            "e1000g0     no      production0 -------   up        disabled  failed"
        );
        assert_eq!(
            lines[2],
            "e1000g1     yes     production0 --mb---   up        disabled  ok"
        );
        assert_eq!(
            lines[3],
            "rge0        no      production0 is-----   up        disabled  ok"
        );
    }

    #[test]
    fn groups_table_decorates_inactive_and_failed_members() {
        let t = groups(&[tutorial()]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "GROUP       GROUPNAME   STATE     FDT       INTERFACES");
        assert_eq!(
            lines[1],
            "production0 production0 degraded  --        e1000g1 (rge0) [e1000g0]"
        );
        let mut g = tutorial();
        g.fdt_ms = Some(10_000);
        assert!(groups(&[g]).contains(" 10.00s "));
    }

    #[test]
    fn address_and_target_tables() {
        let a = addresses(&[tutorial()]);
        assert!(a
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("192.0.2.200             up      production0 e1000g1     e1000g1"));
        let t = targets(&[tutorial()]);
        assert_eq!(
            t.lines().nth(1).unwrap(),
            "e1000g0     disabled  --                    --"
        );
    }
}
