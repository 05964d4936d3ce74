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

fn pad(f: &str, w: Option<usize>) -> String {
    let f = if f.is_empty() { EMPTY } else { f };
    match w {
        // At least one space between columns even when a field overflows.
        Some(w) => format!("{f:<w$}", w = w.max(f.len() + 1)),
        None => f.to_string(),
    }
}

fn yes_no(b: bool) -> String {
    (if b { "yes" } else { "no" }).to_string()
}

/// One ipmpstat mode's output before rendering.
pub struct Table {
    pub headers: Vec<&'static str>,
    /// Widths of all but the last column.
    pub widths: Vec<usize>,
    pub rows: Vec<Vec<String>>,
}

/// Escapes a parsable field: ':' and '\' get a '\' when several fields are printed.
fn escape(f: &str) -> String {
    f.replace('\\', "\\\\").replace(':', "\\:")
}

/// Renders a table: all columns, or the `-o` selection (case-insensitive,
/// "all" for every one); `-P` parsable: no header, ':'-separated, empty
/// fields as nothing.
pub fn render(t: &Table, fields: Option<&str>, parsable: bool) -> Result<String, String> {
    let cols: Vec<usize> = match fields {
        None => (0..t.headers.len()).collect(),
        Some(list) => {
            let mut v = Vec::new();
            for f in list.split(',') {
                if f.eq_ignore_ascii_case("all") {
                    v.extend(0..t.headers.len());
                    continue;
                }
                match t.headers.iter().position(|h| h.eq_ignore_ascii_case(f)) {
                    Some(i) => v.push(i),
                    None => {
                        return Err(format!(
                            "unknown output field \"{f}\" (fields: {})",
                            t.headers.join(",")
                        ))
                    }
                }
            }
            v
        }
    };
    if parsable && fields.is_none() {
        return Err("-P requires -o".into());
    }
    let mut out = String::new();
    if parsable {
        for r in &t.rows {
            let vals: Vec<String> = cols
                .iter()
                .map(|&c| {
                    if cols.len() > 1 {
                        escape(&r[c])
                    } else {
                        r[c].clone()
                    }
                })
                .collect();
            out.push_str(&vals.join(":"));
            out.push('\n');
        }
        return Ok(out);
    }
    let line = |vals: Vec<String>| -> String {
        let n = cols.len();
        let mut s = String::new();
        for (k, (&c, v)) in cols.iter().zip(vals).enumerate() {
            let w = if k + 1 == n {
                None
            } else {
                Some(t.widths.get(c).copied().unwrap_or(12))
            };
            s.push_str(&pad(&v, w));
        }
        s.trim_end().to_string()
    };
    out.push_str(&line(cols.iter().map(|&c| t.headers[c].to_string()).collect()));
    out.push('\n');
    for r in &t.rows {
        out.push_str(&line(cols.iter().map(|&c| r[c].clone()).collect()));
        out.push('\n');
    }
    Ok(out)
}

pub fn interfaces_table(groups: &[GroupStatus]) -> Table {
    let rows = groups
        .iter()
        .flat_map(|g| {
            g.members.iter().map(move |m| {
                vec![
                    m.name.clone(),
                    yes_no(m.active),
                    g.interface.clone(),
                    m.flags.clone(),
                    m.link.clone(),
                    m.probe.clone(),
                    m.state.clone(),
                ]
            })
        })
        .collect();
    Table {
        headers: vec!["INTERFACE", "ACTIVE", "GROUP", "FLAGS", "LINK", "PROBE", "STATE"],
        widths: I_WIDTHS.to_vec(),
        rows,
    }
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

pub fn groups_table(groups: &[GroupStatus]) -> Table {
    Table {
        headers: vec!["GROUP", "GROUPNAME", "STATE", "FDT", "INTERFACES"],
        widths: G_WIDTHS.to_vec(),
        rows: groups
            .iter()
            .map(|g| {
                vec![
                    g.interface.clone(),
                    g.group.clone(),
                    g.state.clone(),
                    fdt(g),
                    interface_list(g),
                ]
            })
            .collect(),
    }
}

pub fn addresses_table(groups: &[GroupStatus]) -> Table {
    let rows = groups
        .iter()
        .flat_map(|g| {
            g.addresses.iter().map(move |a| {
                vec![
                    a.address.clone(),
                    a.state.clone(),
                    g.interface.clone(),
                    a.inbound.clone().unwrap_or_default(),
                    a.outbound.join(" "),
                ]
            })
        })
        .collect();
    Table {
        headers: vec!["ADDRESS", "STATE", "GROUP", "INBOUND", "OUTBOUND"],
        widths: A_WIDTHS.to_vec(),
        rows,
    }
}

pub fn targets_table(groups: &[GroupStatus]) -> Table {
    let rows = groups
        .iter()
        .flat_map(|g| {
            g.members.iter().map(|m| {
                vec![
                    m.name.clone(),
                    m.probe_mode.clone(),
                    m.test_address.clone().unwrap_or_default(),
                    m.targets.join(" "),
                ]
            })
        })
        .collect();
    Table {
        headers: vec!["INTERFACE", "MODE", "TESTADDR", "TARGETS"],
        widths: T_WIDTHS.to_vec(),
        rows,
    }
}

fn all(t: Table) -> String {
    render(&t, None, false).expect("every column exists")
}

pub fn interfaces(groups: &[GroupStatus]) -> String {
    all(interfaces_table(groups))
}
pub fn groups(groups: &[GroupStatus]) -> String {
    all(groups_table(groups))
}
pub fn addresses(groups: &[GroupStatus]) -> String {
    all(addresses_table(groups))
}
pub fn targets(groups: &[GroupStatus]) -> String {
    all(targets_table(groups))
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
            counters: Default::default(),
            rtt_us: None,
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
            failovers: 1,
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
    fn field_selection_and_parsable_output() {
        let t = interfaces_table(&[tutorial()]);
        let o = render(&t, Some("interface,STATE"), false).unwrap();
        assert_eq!(o.lines().next().unwrap(), "INTERFACE   STATE");
        assert_eq!(o.lines().nth(1).unwrap(), "e1000g0     failed");
        let p = render(&t, Some("interface,flags,state"), true).unwrap();
        assert_eq!(p.lines().next().unwrap(), "e1000g0:-------:failed");
        let mut g = tutorial();
        g.addresses[0].outbound = vec![];
        let a = render(&addresses_table(&[g]), Some("address,outbound"), true).unwrap();
        assert_eq!(a, "192.0.2.200:\n", "empty fields print as nothing");
        assert!(render(&t, None, true).unwrap_err().contains("-P requires -o"));
        assert!(render(&t, Some("bogus"), false).unwrap_err().contains("bogus"));
        assert_eq!(render(&t, Some("all"), false).unwrap(), interfaces(&[tutorial()]));
        assert_eq!(escape("a:b\\c"), "a\\:b\\\\c");
    }

    #[test]
    fn metrics_in_prometheus_text() {
        let mut g = tutorial();
        g.members[1].counters.tx_frames = 42;
        g.members[1].counters.rx_drops.insert("other_mac".into(), 3);
        g.members[1].rtt_us = Some(250);
        let m = crate::control::metrics::render(&[g]);
        assert!(m.contains("# TYPE ipmpd_member_tx_frames_total counter"));
        assert!(m.contains("ipmpd_member_tx_frames_total{group=\"production0\",interface=\"e1000g1\"} 42"));
        assert!(m.contains("ipmpd_member_drops_total{group=\"production0\",interface=\"e1000g1\",direction=\"rx\",reason=\"other_mac\"} 3"));
        assert!(
            m.contains("ipmpd_member_state{group=\"production0\",interface=\"e1000g0\",state=\"failed\"} 1")
        );
        assert!(m.contains("ipmpd_group_state{group=\"production0\",state=\"degraded\"} 1"));
        assert!(m.contains("ipmpd_group_failovers_total{group=\"production0\"} 1"));
        assert!(
            m.contains("ipmpd_member_probe_rtt_seconds{group=\"production0\",interface=\"e1000g1\"} 0.00025")
        );
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
