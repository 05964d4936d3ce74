//! ipmpstat's tables, as in.mpathd's ipmpstat prints them: fixed column
//! widths, left-justified, last column unpadded, "--" for empty fields.
//!
//! Each output mode is one list of [`Column`]s (header, width, how a row
//! shows it), so a new column is one line.

use super::{AddressStatus, GroupStatus, MemberStatus, ProbeEvent, ProbeFamily};
use std::time::Duration;

const EMPTY: &str = "--";
/// The width of a mode's last column, used when `-o` puts it elsewhere.
const LAST_WIDTH: usize = 12;

/// One column of an output mode.
pub struct Column<R> {
    /// Its name, for the header line and `-o`.
    pub header: &'static str,
    /// Its width when another column follows.
    pub width: usize,
    /// The field of one row.
    pub value: fn(&R) -> String,
}

/// A column (short to write in the mode lists below).
const fn col<R>(header: &'static str, width: usize, value: fn(&R) -> String) -> Column<R> {
    Column { header, width, value }
}

/// A row of `-i` and `-t`: a member of a group; in `-t`, a member's IPv6
/// probing has a row of its own (`family`), as in Solaris.
pub struct MemberRow<'a> {
    pub group: &'a GroupStatus,
    pub member: &'a MemberStatus,
    pub family: Option<&'a ProbeFamily>,
}

/// A row of `-a`: a data address of a group.
pub struct AddressRow<'a> {
    pub group: &'a GroupStatus,
    pub address: &'a AddressStatus,
}

/// A row of `-p`: a probe outcome, at a time since ipmpstat started.
pub struct ProbeRow {
    pub time: Duration,
    pub event: ProbeEvent,
}

/// `-i`: the members.
pub fn interface_columns<'a>() -> Vec<Column<MemberRow<'a>>> {
    vec![
        col("INTERFACE", 12, |r| r.member.name.clone()),
        col("ACTIVE", 8, |r| yes_no(r.member.active)),
        col("GROUP", 12, |r| r.group.interface.clone()),
        col("FLAGS", 10, |r| r.member.flags.clone()),
        col("LINK", 10, |r| r.member.link.to_string()),
        col("PROBE", 10, |r| r.member.probe.to_string()),
        col("STATE", LAST_WIDTH, |r| r.member.state.to_string()),
    ]
}

/// `-g`: the groups.
pub fn group_columns<'a>() -> Vec<Column<&'a GroupStatus>> {
    vec![
        col("GROUP", 12, |g| g.interface.clone()),
        col("GROUPNAME", 12, |g| g.group.clone()),
        col("STATE", 10, |g| g.state.to_string()),
        col("FDT", 10, |g| fdt(g)),
        col("INTERFACES", LAST_WIDTH, |g| interface_list(g)),
    ]
}

/// `-a`: the data addresses.
pub fn address_columns<'a>() -> Vec<Column<AddressRow<'a>>> {
    vec![
        col("ADDRESS", 24, |r| r.address.address.clone()),
        col("STATE", 8, |r| r.address.state.to_string()),
        col("GROUP", 12, |r| r.group.interface.clone()),
        col("INBOUND", 12, |r| r.address.inbound.clone().unwrap_or_default()),
        col("OUTBOUND", LAST_WIDTH, |r| r.address.outbound.join(" ")),
    ]
}

/// `-t`: the probe targets.
pub fn target_columns<'a>() -> Vec<Column<MemberRow<'a>>> {
    vec![
        col("INTERFACE", 12, |r| r.member.name.clone()),
        col("MODE", 10, |r| match r.family {
            Some(f) => f.target_mode.to_string(),
            None => r.member.target_mode.to_string(),
        }),
        col("TESTADDR", 22, |r| match r.family {
            Some(f) => f.test_address.clone().unwrap_or_default(),
            None => r.member.test_address.clone().unwrap_or_default(),
        }),
        col("TARGETS", LAST_WIDTH, |r| match r.family {
            Some(f) => f.targets.join(" "),
            None => r.member.targets.join(" "),
        }),
    ]
}

/// `-p`: probe outcomes (lost probes with empty RTT fields).
pub fn probe_columns() -> Vec<Column<ProbeRow>> {
    vec![
        col("TIME", 10, |r| format!("{:.2}s", r.time.as_secs_f64())),
        col("INTERFACE", 12, |r| r.event.interface.clone()),
        col("PROBE", 7, |r| r.event.seq.to_string()),
        // An older daemon sends no NETRTT: its RTT is the best figure
        // there is (an empty field would read as a lost probe).
        col("NETRTT", 10, |r| ms(r.event.net_rtt_us.or(r.event.rtt_us))),
        col("RTT", 10, |r| ms(r.event.rtt_us)),
        col("RTTAVG", 10, |r| ms(r.event.rtt_avg_us)),
        col("TARGET", 16, |r| r.event.target.clone()),
        col("RTTDEV", LAST_WIDTH, |r| ms(r.event.rtt_dev_us)),
    ]
}

/// The columns `-p` shows without `-o` (RTTDEV only on request).
pub const PROBE_FIELDS: &str = "time,interface,probe,netrtt,rtt,rttavg,target";

fn ms(us: Option<u64>) -> String {
    us.map(|us| format!("{:.2}ms", us as f64 / 1000.0))
        .unwrap_or_default()
}

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

/// One ipmpstat mode's output before rendering: its columns and rows.
pub struct Table<R> {
    pub columns: Vec<Column<R>>,
    pub rows: Vec<R>,
}

/// Escapes a parsable field: ':' and '\' get a '\' when several fields are printed.
fn escape(f: &str) -> String {
    f.replace('\\', "\\\\").replace(':', "\\:")
}

/// Renders a table: all columns, or the `-o` selection (case-insensitive,
/// "all" for every one); `-P` parsable: no header, ':'-separated, empty
/// fields as nothing.
pub fn render<R>(t: &Table<R>, fields: Option<&str>, parsable: bool) -> Result<String, String> {
    let cols: Vec<&Column<R>> = match fields {
        None => t.columns.iter().collect(),
        Some(list) => {
            let mut v = Vec::new();
            for f in list.split(',') {
                if f.eq_ignore_ascii_case("all") {
                    v.extend(t.columns.iter());
                    continue;
                }
                match t.columns.iter().find(|c| c.header.eq_ignore_ascii_case(f)) {
                    Some(c) => v.push(c),
                    None => {
                        let names: Vec<&str> = t.columns.iter().map(|c| c.header).collect();
                        return Err(format!(
                            "unknown output field \"{f}\" (fields: {})",
                            names.join(",")
                        ));
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
                .map(|c| {
                    let v = (c.value)(r);
                    if cols.len() > 1 {
                        escape(&v)
                    } else {
                        v
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
        for (k, (c, v)) in cols.iter().zip(vals).enumerate() {
            let w = if k + 1 == n { None } else { Some(c.width) };
            s.push_str(&pad(&v, w));
        }
        s.trim_end().to_string()
    };
    out.push_str(&line(cols.iter().map(|c| c.header.to_string()).collect()));
    out.push('\n');
    for r in &t.rows {
        out.push_str(&line(cols.iter().map(|c| (c.value)(r)).collect()));
        out.push('\n');
    }
    Ok(out)
}

fn member_rows(groups: &[GroupStatus]) -> Vec<MemberRow<'_>> {
    groups
        .iter()
        .flat_map(|group| {
            group.members.iter().map(move |member| MemberRow {
                group,
                member,
                family: None,
            })
        })
        .collect()
}

/// `-t`'s rows: each member's IPv4 row, then its IPv6 row if it has one.
fn target_rows(groups: &[GroupStatus]) -> Vec<MemberRow<'_>> {
    groups
        .iter()
        .flat_map(|group| {
            group.members.iter().flat_map(move |member| {
                let v4 = MemberRow {
                    group,
                    member,
                    family: None,
                };
                let v6 = member.ipv6.as_ref().map(|f| MemberRow {
                    group,
                    member,
                    family: Some(f),
                });
                std::iter::once(v4).chain(v6)
            })
        })
        .collect()
}

pub fn interfaces_table(groups: &[GroupStatus]) -> Table<MemberRow<'_>> {
    Table {
        columns: interface_columns(),
        rows: member_rows(groups),
    }
}

/// Active members plain, then inactive ones in parentheses, then unusable
/// ones in brackets: "rge0 e1000g1 (e1000g2) \[e1000g0\]".
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

pub fn groups_table(groups: &[GroupStatus]) -> Table<&GroupStatus> {
    Table {
        columns: group_columns(),
        rows: groups.iter().collect(),
    }
}

pub fn addresses_table(groups: &[GroupStatus]) -> Table<AddressRow<'_>> {
    Table {
        columns: address_columns(),
        rows: groups
            .iter()
            .flat_map(|group| {
                group
                    .addresses
                    .iter()
                    .map(move |address| AddressRow { group, address })
            })
            .collect(),
    }
}

pub fn targets_table(groups: &[GroupStatus]) -> Table<MemberRow<'_>> {
    Table {
        columns: target_columns(),
        rows: target_rows(groups),
    }
}

/// `-p`'s table of one probe outcome.
pub fn probe_table(time: Duration, event: ProbeEvent) -> Table<ProbeRow> {
    Table {
        columns: probe_columns(),
        rows: vec![ProbeRow { time, event }],
    }
}

fn all<R>(t: Table<R>) -> String {
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
    use crate::control::{
        AddressState, AddressStatus, GroupState, LinkState, MemberState, MemberStatus, ProbeState, TargetMode,
    };

    fn member(name: &str, active: bool, inactive: bool, flags: &str, state: MemberState) -> MemberStatus {
        MemberStatus {
            name: name.into(),
            active,
            flags: flags.into(),
            link: LinkState::Up,
            probe: ProbeState::Disabled,
            state,
            target_mode: TargetMode::Disabled,
            test_address: None,
            targets: vec![],
            inactive,
            counters: Default::default(),
            rtt_us: None,
            ipv6: None,
        }
    }

    fn tutorial() -> GroupStatus {
        GroupStatus {
            interface: "production0".into(),
            group: "production0".into(),
            state: GroupState::Degraded,
            fdt_ms: None,
            members: vec![
                member("e1000g0", false, false, "-------", MemberState::Failed),
                member("e1000g1", true, false, "--mb---", MemberState::Ok),
                member("rge0", false, true, "is-----", MemberState::Ok),
            ],
            addresses: vec![AddressStatus {
                address: "192.0.2.200".into(),
                state: AddressState::Up,
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
        let groups = [tutorial()];
        let t = interfaces_table(&groups);
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
        // A member probed over IPv6 too: a second row for it.
        let mut g = tutorial();
        g.members[0].ipv6 = Some(ProbeFamily {
            target_mode: TargetMode::Routes,
            test_address: Some("fe80::ff:fe00:a".into()),
            targets: vec!["fe80::1".into()],
        });
        let t = targets(std::slice::from_ref(&g));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[1], "e1000g0     disabled  --                    --");
        assert_eq!(lines[2], "e1000g0     routes    fe80::ff:fe00:a       fe80::1");
        assert_eq!(lines.len(), 2 + g.members.len());
    }

    #[test]
    fn a_last_column_moved_first_keeps_a_width() {
        let g = render(&groups_table(&[tutorial()]), Some("interfaces,group"), false).unwrap();
        assert_eq!(g, "INTERFACES  GROUP\ne1000g1 (rge0) [e1000g0] production0\n");
    }

    #[test]
    fn probe_rows_in_the_original_layout() {
        let ev = |rtt_us: Option<u64>| ProbeEvent {
            time_ms: 0,
            interface: "e1000g0".into(),
            seq: 7,
            target: "192.0.2.1".into(),
            rtt_us,
            net_rtt_us: rtt_us.map(|r| r - 50),
            rtt_avg_us: rtt_us,
            rtt_dev_us: None,
        };
        let t = probe_table(Duration::from_millis(1500), ev(Some(250)));
        assert_eq!(
            render(&t, Some(PROBE_FIELDS), false).unwrap(),
            "TIME      INTERFACE   PROBE  NETRTT    RTT       RTTAVG    TARGET\n\
             1.50s     e1000g0     7      0.20ms    0.25ms    0.25ms    192.0.2.1\n"
        );
        let lost = probe_table(Duration::from_millis(1500), ev(None));
        assert_eq!(
            render(&lost, Some("all"), true).unwrap(),
            "1.50s:e1000g0:7::::192.0.2.1:\n"
        );
    }

    #[test]
    fn netrtt_of_an_older_daemon_falls_back_to_rtt() {
        let ev = ProbeEvent {
            time_ms: 0,
            interface: "e1000g0".into(),
            seq: 7,
            target: "192.0.2.1".into(),
            rtt_us: Some(250),
            net_rtt_us: None,
            rtt_avg_us: Some(250),
            rtt_dev_us: None,
        };
        let t = probe_table(Duration::from_millis(1500), ev);
        assert_eq!(
            render(&t, Some("probe,netrtt,rtt"), true).unwrap(),
            "7:0.25ms:0.25ms\n"
        );
        // And through the wire format: an older daemon's line has no field.
        let line = r#"{"time_ms":0,"interface":"e1000g0","seq":7,"target":"192.0.2.1","rtt_us":250,"rtt_avg_us":250,"rtt_dev_us":null}"#;
        let ev: ProbeEvent = serde_json::from_str(line).unwrap();
        let t = probe_table(Duration::from_millis(1500), ev);
        assert_eq!(render(&t, Some("netrtt"), true).unwrap(), "0.25ms\n");
    }
}
