//! A member: the checks that refuse it before anything is touched, taking
//! it over (isolation), and giving it back exactly as it was found.

use super::state::{self, MemberRecord, StateHandle, ISOLATION_SYSCTLS};
use crate::netlink::{AddrInfo, Handle, LinkInfo, RouteInfo, RTPROT_KERNEL};
use crate::sys::bpf::{self, TcxLink};
use crate::sys::sysctl;
use std::io;
use std::net::IpAddr;

/// Why a member cannot be taken: the checks that run before anything is
/// touched. Pure, so every refusal is unit-tested.
pub fn check_member(
    link: &LinkInfo,
    links: &[LinkInfo],
    addrs: &[AddrInfo],
    routes: &[RouteInfo],
    tcx_programs: u32,
    force: bool,
) -> Result<(), String> {
    let name = &link.name;
    if link.mac.is_none() {
        return Err(format!("member {name} is not an Ethernet interface"));
    }
    if let Some(m) = link.master {
        let master = links
            .iter()
            .find(|l| l.index == m)
            .map_or("another device", |l| l.name.as_str());
        return Err(format!(
            "member {name} is enslaved to {master}; remove it from {master} first"
        ));
    }
    if let Some(upper) = links
        .iter()
        .find(|l| l.link == Some(link.index) && l.index != link.index)
    {
        return Err(format!(
            "member {name} has upper device {} ({}) stacked on it; ipmpd takes all of a member's traffic, so nothing may be stacked on it",
            upper.name,
            upper.kind.as_deref().unwrap_or("unknown kind")
        ));
    }
    if tcx_programs > 0 {
        return Err(format!(
            "member {name} already has a tcx ingress program attached: it is a member of another ipmpd group, or another tool owns its traffic"
        ));
    }
    if force {
        return Ok(());
    }
    let hint = "taking it over would cut the host off from it (remove it first, or pass --force)";
    for a in addrs.iter().filter(|a| a.index == link.index) {
        match a.addr {
            IpAddr::V4(v4) => {
                return Err(format!(
                    "member {name} still carries IPv4 address {v4}/{}: {hint}",
                    a.prefix_len
                ))
            }
            IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) != 0xfe80 => {
                return Err(format!(
                    "member {name} still carries IPv6 address {v6}/{}: {hint}",
                    a.prefix_len
                ))
            }
            IpAddr::V6(_) => {}
        }
    }
    if let Some(r) = routes
        .iter()
        .find(|r| r.oif == Some(link.index) && r.protocol != RTPROT_KERNEL)
    {
        let dst = r
            .dst
            .map_or("default".to_string(), |d| format!("{d}/{}", r.dst_len));
        let via = r.gateway.map_or(String::new(), |g| format!(" via {g}"));
        return Err(format!(
            "member {name} is used by route {dst}{via} (table {}, protocol {}): {hint}",
            r.table, r.protocol
        ));
    }
    Ok(())
}

/// A member the daemon has changed. Its original settings are on disk
/// (the state file) before anything is changed, and put back on drop.
pub struct Isolation {
    record: MemberRecord,
    state: StateHandle,
    /// Cleared when the interface is gone: nothing left to restore.
    armed: bool,
    /// Dropped last (after `drop` restored the rest): the kernel resumes
    /// handling the member's traffic only once everything else is as it was.
    tcx: Option<TcxLink>,
}

impl Isolation {
    /// Records the member in the state file, then attaches the drop-all
    /// program (from then on the kernel does not see the member's traffic),
    /// turns IPv6 off and brings it up. A failing step gives back what the
    /// earlier ones changed.
    pub fn take(nl: &mut Handle, link: &LinkInfo, state: &StateHandle) -> io::Result<Isolation> {
        let record = MemberRecord::capture(nl, link)?;
        state.borrow_mut().add(record.clone())?;
        let mut iso = Isolation {
            record,
            state: state.clone(),
            armed: true,
            tcx: None,
        };
        iso.tcx = Some(bpf::attach_drop_all(link.index, &link.name)?);
        for (family, key, value) in ISOLATION_SYSCTLS {
            sysctl::write(family, &link.name, key, value)?;
        }
        if !link.up {
            nl.set_up(link.index, true)?;
        }
        Ok(iso)
    }

    /// The member's tcx link, whose program the fast path swaps.
    pub fn tcx(&self) -> Option<&TcxLink> {
        self.tcx.as_ref()
    }

    /// The interface is gone: there is nothing left to restore.
    pub fn forget(&mut self) {
        self.armed = false;
    }

    /// Puts the member back as recorded; Err keeps its record on disk.
    fn restore(&self) -> io::Result<()> {
        let mut nl = Handle::new()?;
        let Some(link) = nl.link_by_index(self.record.ifindex)? else {
            // Deleted meanwhile: nothing to restore.
            return Ok(());
        };
        // While the daemon runs, the ifindex alone names the device: its
        // deletion would have disarmed this (a member renamed and given a
        // new MAC meanwhile is still ours to give back).
        let done = state::restore_member(&mut nl, &self.record, &link)?;
        log::debug!("{} restored ({})", link.name, done.join(", "));
        Ok(())
    }
}

impl Drop for Isolation {
    fn drop(&mut self) {
        let name = &self.record.name;
        if self.armed {
            if let Err(e) = self.restore() {
                // The record stays in the state file: the next start retries.
                log::error!("restoring {name}: {e}; its original settings stay in the state file");
                return;
            }
        }
        // A panic elsewhere may have left the state borrowed; never panic in drop.
        match self.state.try_borrow_mut() {
            Ok(mut st) => {
                if let Err(e) = st.remove(self.record.ifindex) {
                    log::warn!("state file: {e}");
                }
            }
            Err(_) => log::warn!("state file busy; {name}'s record stays (restored already)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn link(index: u32, name: &str) -> LinkInfo {
        LinkInfo {
            index,
            name: name.into(),
            mac: Some([2, 0, 0, 0, 0, index as u8]),
            mtu: 1500,
            up: true,
            lower_up: true,
            master: None,
            link: None,
            kind: Some("veth".into()),
        }
    }

    fn route(oif: u32, protocol: u8) -> RouteInfo {
        RouteInfo {
            table: 254,
            protocol,
            kind: 1,
            dst: Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 0))),
            dst_len: 24,
            gateway: None,
            oif: Some(oif),
        }
    }

    #[test]
    fn clean_member_is_accepted() {
        let m = link(3, "m0");
        let ll = AddrInfo {
            index: 3,
            addr: IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
            prefix_len: 64,
            flags: 0,
        };
        assert!(check_member(
            &m,
            std::slice::from_ref(&m),
            &[ll],
            &[route(3, RTPROT_KERNEL)],
            0,
            false
        )
        .is_ok());
    }

    #[test]
    fn every_refusal_names_the_member_and_the_problem() {
        let m = link(3, "m0");
        let mut br = link(9, "br9");
        br.kind = Some("bridge".into());
        let enslaved = LinkInfo {
            master: Some(9),
            ..m.clone()
        };
        let e = check_member(&enslaved, &[br, enslaved.clone()], &[], &[], 0, false).unwrap_err();
        assert!(e.contains("m0") && e.contains("br9"), "{e}");

        let mut vlan = link(4, "m0.100");
        vlan.link = Some(3);
        vlan.kind = Some("vlan".into());
        let e = check_member(&m, &[m.clone(), vlan], &[], &[], 0, true).unwrap_err();
        assert!(e.contains("m0.100") && e.contains("vlan"), "{e}");

        let e = check_member(&m, &[], &[], &[], 1, true).unwrap_err();
        assert!(e.contains("another ipmpd group"), "{e}");

        let v4 = AddrInfo {
            index: 3,
            addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 5)),
            prefix_len: 24,
            flags: 0,
        };
        let e = check_member(&m, &[], std::slice::from_ref(&v4), &[], 0, false).unwrap_err();
        assert!(e.contains("192.0.2.5/24") && e.contains("--force"), "{e}");
        assert!(check_member(&m, &[], &[v4], &[], 0, true).is_ok());

        let v6 = AddrInfo {
            index: 3,
            addr: IpAddr::V6("2001:db8::5".parse().unwrap()),
            prefix_len: 64,
            flags: 0,
        };
        let e = check_member(&m, &[], &[v6], &[], 0, false).unwrap_err();
        assert!(e.contains("2001:db8::5/64"), "{e}");

        let e = check_member(&m, &[], &[], &[route(3, 4)], 0, false).unwrap_err();
        assert!(e.contains("198.51.100.0/24"), "{e}");

        let nomac = LinkInfo {
            mac: None,
            ..m.clone()
        };
        assert!(check_member(&nomac, &[], &[], &[], 0, false)
            .unwrap_err()
            .contains("Ethernet"));
    }
}
