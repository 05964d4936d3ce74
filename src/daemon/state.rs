//! The state file: what every member looked like before ipmpd changed it,
//! kept on disk so that a daemon killed without its teardown (SIGKILL, an
//! abort, a panic inside teardown, a power cut of the process) can be
//! undone by the next start.
//!
//! `<run dir>/<group>.state`, JSON, root-owned 0600. A member's record is
//! written (atomically: temporary file, fsync, rename, fsync of the
//! directory) *before* anything on the member is changed, and removed once
//! the member is given back; the file is deleted with its last record. So
//! the file exists exactly while some member may differ from its original.
//!
//! A start that finds the file (its owner is dead: the start holds the
//! group's pid lock) restores every member it names from it, then deletes
//! it, and only then records the members afresh.
//!
//! Identity: a record applies to the device with the recorded ifindex when
//! that device also has the recorded name or the recorded MAC. An ifindex is
//! never reused soon by the kernel, and the second witness guards against
//! reuse; requiring only one of name and MAC lets a member renamed, or given
//! another MAC, while ipmpd ran still be restored. A device deleted and
//! created again is a new device, with settings of its own: not touched.

use crate::netlink::{self, Addr6Detail, Handle, LinkInfo, Route6Detail};
use crate::sys::{self, sysctl};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::Ipv6Addr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Format version; a file of another version is refused, not guessed at.
pub const STATE_VERSION: u32 = 1;
/// Largest state file read: far above any real group (records are a few
/// hundred bytes), small enough that reading it cannot hurt.
pub const MAX_STATE_BYTES: u64 = 1024 * 1024;
/// Most members a state file may name (a group has fewer than 255 slots).
pub const MAX_STATE_MEMBERS: usize = 256;
/// Most IPv6 addresses recorded per member.
pub const MAX_ADDRS_PER_MEMBER: usize = 256;
/// Most IPv6 routes recorded per member.
pub const MAX_ROUTES_PER_MEMBER: usize = 256;
/// RA route preferences (ICMPV6_ROUTER_PREF_MEDIUM, _HIGH, _LOW).
const ROUTE_PREFS: [u8; 3] = [0, 1, 3];
/// The local table: only the kernel's own routes live there.
const RT_TABLE_LOCAL: u32 = 255;
/// Longest sysctl value recorded.
const MAX_SYSCTL_VALUE_LEN: usize = 32;
/// Smallest and largest MTU a record may hold (ETH_MIN_MTU, IP_MAX_MTU).
const MIN_MTU: u32 = 68;
const MAX_MTU: u32 = 65535;
/// Temporary file mode: only root reads the members' original settings.
const STATE_MODE: u32 = 0o600;

/// The sysctls Isolation changes on a member: (family, key, value while
/// the member is in the group). Nothing outside this list is ever written
/// from a state file.
pub const ISOLATION_SYSCTLS: [(&str, &str, &str); 1] = [
    // The kernel would otherwise autoconfigure and send DAD/RS on it.
    ("ipv6", "disable_ipv6", "1"),
];

/// IFA_F_* flags an address is added back with; the others are state the
/// kernel keeps (tentative, deprecated, dadfailed, permanent...).
pub const RESTORABLE_ADDR_FLAGS: u32 = netlink::IFA_F_NODAD
    | netlink::IFA_F_OPTIMISTIC
    | netlink::IFA_F_HOMEADDRESS
    | netlink::IFA_F_MANAGETEMPADDR
    | netlink::IFA_F_NOPREFIXROUTE
    | netlink::IFA_F_MCAUTOJOIN;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StateDoc {
    pub version: u32,
    pub group: String,
    /// The daemon that wrote it (for the log of the one restoring).
    pub pid: u32,
    pub members: Vec<MemberRecord>,
}

/// A member as it was before ipmpd touched it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MemberRecord {
    pub name: String,
    pub ifindex: u32,
    pub mac: [u8; 6],
    pub mtu: u32,
    /// IFF_UP.
    pub up: bool,
    pub sysctls: Vec<SysctlRecord>,
    /// Statically configured IPv6 addresses: disable_ipv6=1 deletes them
    /// and the kernel does not bring them back. (Addresses the kernel made
    /// itself, link-local and SLAAC, come back on their own.)
    pub ipv6: Vec<AddrRecord>,
    /// IPv6 routes through the member that were not made by the kernel
    /// (they go with its addresses; only taken with --force).
    pub routes6: Vec<RouteRecord>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RouteRecord {
    pub table: u32,
    pub protocol: u8,
    pub dst: Ipv6Addr,
    pub dst_len: u8,
    pub gateway: Option<Ipv6Addr>,
    pub metric: Option<u32>,
    pub onlink: bool,
    pub pref: Option<u8>,
}

impl RouteRecord {
    fn wanted(r: &Route6Detail, ifindex: u32) -> bool {
        r.oif == ifindex
            && r.table != RT_TABLE_LOCAL
            && !matches!(r.protocol, netlink::RTPROT_KERNEL | netlink::RTPROT_RA)
    }

    fn from_detail(r: &Route6Detail) -> RouteRecord {
        RouteRecord {
            table: r.table,
            protocol: r.protocol,
            dst: r.dst,
            dst_len: r.dst_len,
            gateway: r.gateway,
            metric: r.metric,
            onlink: r.onlink,
            pref: r.pref,
        }
    }

    fn to_detail(&self, oif: u32) -> Route6Detail {
        Route6Detail {
            table: self.table,
            protocol: self.protocol,
            dst: self.dst,
            dst_len: self.dst_len,
            gateway: self.gateway,
            oif,
            metric: self.metric,
            onlink: self.onlink,
            pref: self.pref,
        }
    }

    fn describe(&self) -> String {
        let via = self.gateway.map(|g| format!(" via {g}")).unwrap_or_default();
        format!("route {}/{}{via} (table {})", self.dst, self.dst_len, self.table)
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SysctlRecord {
    pub family: String,
    pub key: String,
    pub value: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AddrRecord {
    pub addr: Ipv6Addr,
    pub prefix_len: u8,
    /// Within [`RESTORABLE_ADDR_FLAGS`].
    pub flags: u32,
    /// 0: deprecated; u32::MAX: forever.
    pub preferred_lft: u32,
    /// IFA_PROTO.
    pub proto: u8,
    pub metric: Option<u32>,
}

impl AddrRecord {
    /// Whether an address is one to record: configured by hand (permanent,
    /// not one the kernel generated), not a privacy address.
    fn wanted(d: &Addr6Detail) -> bool {
        d.flags & netlink::IFA_F_PERMANENT != 0
            && d.flags & netlink::IFA_F_TEMPORARY == 0
            && !matches!(
                d.proto,
                netlink::IFAPROT_KERNEL_LO | netlink::IFAPROT_KERNEL_RA | netlink::IFAPROT_KERNEL_LL
            )
    }

    fn from_detail(d: &Addr6Detail) -> AddrRecord {
        AddrRecord {
            addr: d.addr,
            prefix_len: d.prefix_len,
            flags: d.flags & RESTORABLE_ADDR_FLAGS,
            // A permanent address is either preferred forever or deprecated.
            preferred_lft: if d.preferred_lft == 0 {
                0
            } else {
                netlink::INFINITY_LIFE_TIME
            },
            proto: d.proto,
            metric: d.metric,
        }
    }

    fn to_detail(&self, index: u32) -> Addr6Detail {
        Addr6Detail {
            index,
            addr: self.addr,
            prefix_len: self.prefix_len,
            flags: self.flags,
            valid_lft: netlink::INFINITY_LIFE_TIME,
            preferred_lft: self.preferred_lft,
            proto: self.proto,
            metric: self.metric,
        }
    }
}

impl MemberRecord {
    /// Reads what Isolation is about to change on `link`.
    pub fn capture(nl: &mut Handle, link: &LinkInfo) -> io::Result<MemberRecord> {
        let now = nl
            .link_by_index(link.index)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{} vanished", link.name)))?;
        let mut sysctls = Vec::new();
        for (family, key, _) in ISOLATION_SYSCTLS {
            sysctls.push(SysctlRecord {
                family: family.into(),
                key: key.into(),
                value: sysctl::read(family, &now.name, key)?,
            });
        }
        let ipv6: Vec<AddrRecord> = nl
            .ipv6_address_details()?
            .iter()
            .filter(|d| d.index == now.index && AddrRecord::wanted(d))
            .map(AddrRecord::from_detail)
            .take(MAX_ADDRS_PER_MEMBER)
            .collect();
        let routes6: Vec<RouteRecord> = nl
            .ipv6_route_details()?
            .iter()
            .filter(|r| RouteRecord::wanted(r, now.index))
            .map(RouteRecord::from_detail)
            .take(MAX_ROUTES_PER_MEMBER)
            .collect();
        Ok(MemberRecord {
            name: now.name.clone(),
            ifindex: now.index,
            mac: now.mac.unwrap_or([0; 6]),
            mtu: now.mtu,
            up: now.up,
            sysctls,
            ipv6,
            routes6,
        })
    }

    /// Whether `link` is the device this record was taken from (see the
    /// module documentation).
    pub fn same_device(&self, link: &LinkInfo) -> bool {
        link.index == self.ifindex && (link.name == self.name || link.mac == Some(self.mac))
    }

    fn validate(&self) -> Result<(), String> {
        crate::config::check_ifname("member name", &self.name)?;
        let who = &self.name;
        if self.ifindex == 0 || self.ifindex > i32::MAX as u32 {
            return Err(format!("{who}: invalid ifindex {}", self.ifindex));
        }
        if !(MIN_MTU..=MAX_MTU).contains(&self.mtu) {
            return Err(format!("{who}: MTU {} out of range", self.mtu));
        }
        if self.sysctls.len() > ISOLATION_SYSCTLS.len() {
            return Err(format!("{who}: {} sysctls recorded", self.sysctls.len()));
        }
        for (i, s) in self.sysctls.iter().enumerate() {
            if !ISOLATION_SYSCTLS
                .iter()
                .any(|(f, k, _)| *f == s.family && *k == s.key)
            {
                return Err(format!(
                    "{who}: sysctl {}.{} is not one ipmpd changes",
                    s.family, s.key
                ));
            }
            if self.sysctls[..i]
                .iter()
                .any(|o| o.family == s.family && o.key == s.key)
            {
                return Err(format!("{who}: sysctl {} recorded twice", s.key));
            }
            let v = s.value.strip_prefix('-').unwrap_or(&s.value);
            if s.value.len() > MAX_SYSCTL_VALUE_LEN || v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(format!("{who}: sysctl {} has invalid value {:?}", s.key, s.value));
            }
        }
        if self.ipv6.len() > MAX_ADDRS_PER_MEMBER {
            return Err(format!("{who}: {} IPv6 addresses recorded", self.ipv6.len()));
        }
        for a in &self.ipv6 {
            if a.prefix_len > 128 {
                return Err(format!(
                    "{who}: {}/{}: invalid prefix length",
                    a.addr, a.prefix_len
                ));
            }
            if a.addr.is_unspecified() || a.addr.is_multicast() || a.addr.is_loopback() {
                return Err(format!("{who}: {} is not a unicast address", a.addr));
            }
            if a.flags & !RESTORABLE_ADDR_FLAGS != 0 {
                return Err(format!("{who}: {}: flags {:#x} not restorable", a.addr, a.flags));
            }
            if a.preferred_lft != 0 && a.preferred_lft != netlink::INFINITY_LIFE_TIME {
                return Err(format!("{who}: {}: invalid preferred lifetime", a.addr));
            }
        }
        if self.routes6.len() > MAX_ROUTES_PER_MEMBER {
            return Err(format!("{who}: {} IPv6 routes recorded", self.routes6.len()));
        }
        for r in &self.routes6 {
            let what = r.describe();
            if r.dst_len > 128 {
                return Err(format!("{who}: {what}: invalid prefix length"));
            }
            if r.table == RT_TABLE_LOCAL || matches!(r.protocol, netlink::RTPROT_KERNEL | netlink::RTPROT_RA)
            {
                return Err(format!("{who}: {what}: a route of the kernel's own"));
            }
            if r.gateway
                .is_some_and(|g| g.is_unspecified() || g.is_multicast() || g.is_loopback())
            {
                return Err(format!("{who}: {what}: invalid gateway"));
            }
            if r.pref.is_some_and(|p| !ROUTE_PREFS.contains(&p)) {
                return Err(format!("{who}: {what}: invalid preference"));
            }
        }
        Ok(())
    }
}

impl StateDoc {
    /// Parses and checks a state file's bytes: every field bounded, only
    /// the sysctls ipmpd changes, the group it belongs to.
    pub fn parse(bytes: &[u8], group: &str) -> Result<StateDoc, String> {
        if bytes.len() as u64 > MAX_STATE_BYTES {
            return Err(format!("larger than {MAX_STATE_BYTES} bytes"));
        }
        let doc: StateDoc = serde_json::from_slice(bytes).map_err(|e| format!("not valid: {e}"))?;
        if doc.version != STATE_VERSION {
            return Err(format!(
                "version {} (this ipmpd reads version {STATE_VERSION})",
                doc.version
            ));
        }
        if doc.group != group {
            return Err(format!("belongs to group {:?}, not {group:?}", doc.group));
        }
        if doc.members.len() > MAX_STATE_MEMBERS {
            return Err(format!("names {} members", doc.members.len()));
        }
        for (i, m) in doc.members.iter().enumerate() {
            m.validate()?;
            if doc.members[..i].iter().any(|o| o.ifindex == m.ifindex) {
                return Err(format!("ifindex {} recorded twice", m.ifindex));
            }
        }
        Ok(doc)
    }
}

pub fn state_path(run_dir: &Path, group: &str) -> PathBuf {
    run_dir.join(format!("{group}.state"))
}

fn tmp_path(run_dir: &Path, group: &str) -> PathBuf {
    run_dir.join(format!(".{group}.state.tmp"))
}

/// Reads a state file without following a symlink and only when it is
/// ours: a regular file owned by our uid, not readable or writable by
/// anyone else, bounded in size. `Ok(None)`: there is none.
pub fn load(run_dir: &Path, group: &str) -> Result<Option<StateDoc>, String> {
    let path = state_path(run_dir, group);
    let shown = path.display();
    let f = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(format!("state file {shown}: is a symbolic link"))
        }
        Err(e) => return Err(format!("state file {shown}: {e}")),
    };
    let m = f.metadata().map_err(|e| format!("state file {shown}: {e}"))?;
    if !m.file_type().is_file() {
        return Err(format!("state file {shown}: is not a regular file"));
    }
    if m.uid() != sys::euid() {
        return Err(format!(
            "state file {shown}: is owned by uid {}, not by ipmpd's",
            m.uid()
        ));
    }
    if m.mode() & 0o077 != 0 {
        return Err(format!(
            "state file {shown}: mode {:o} lets others read or write it",
            m.mode() & 0o7777
        ));
    }
    let mut bytes = Vec::new();
    f.take(MAX_STATE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("state file {shown}: {e}"))?;
    StateDoc::parse(&bytes, group)
        .map(Some)
        .map_err(|e| format!("state file {shown}: {e}"))
}

/// The live state file of a running group.
pub struct StateFile {
    run_dir: PathBuf,
    doc: StateDoc,
}

/// Shared by the daemon and every member's Isolation (control thread only).
pub type StateHandle = Rc<RefCell<StateFile>>;

impl StateFile {
    /// No records yet; nothing is written until the first member is taken.
    pub fn new(run_dir: &Path, group: &str) -> StateHandle {
        Rc::new(RefCell::new(StateFile {
            run_dir: run_dir.to_path_buf(),
            doc: StateDoc {
                version: STATE_VERSION,
                group: group.to_string(),
                pid: std::process::id(),
                members: Vec::new(),
            },
        }))
    }

    /// Records a member (replacing an older record of the same device) and
    /// writes the file; the member may be changed once this returns Ok.
    pub fn add(&mut self, rec: MemberRecord) -> io::Result<()> {
        let before = self.doc.members.clone();
        self.doc.members.retain(|m| m.ifindex != rec.ifindex);
        self.doc.members.push(rec);
        // Memory and file agree, whatever happens: a record that could not
        // be written is not kept (the member is then not taken).
        self.write().inspect_err(|_| self.doc.members = before)
    }

    /// The member is as it was found again (or gone): its record goes.
    pub fn remove(&mut self, ifindex: u32) -> io::Result<()> {
        let before = self.doc.members.clone();
        self.doc.members.retain(|m| m.ifindex != ifindex);
        if self.doc.members.len() == before.len() {
            return Ok(());
        }
        let r = if self.doc.members.is_empty() {
            remove_file(&self.run_dir, &self.doc.group)
        } else {
            self.write()
        };
        // The file still holds the record: so does memory.
        r.inspect_err(|_| self.doc.members = before)
    }

    /// Atomic replace: a crash at any point leaves the old or the new file.
    fn write(&self) -> io::Result<()> {
        let path = state_path(&self.run_dir, &self.doc.group);
        let tmp = tmp_path(&self.run_dir, &self.doc.group);
        let ctx =
            |e: io::Error, what: &str| io::Error::new(e.kind(), format!("{what} {}: {e}", tmp.display()));
        // A leftover of a crash during a write (unlinks a symlink itself,
        // never its target).
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(ctx(e, "removing")),
            _ => {}
        }
        // Only what a start would accept back.
        for m in &self.doc.members {
            m.validate().map_err(io::Error::other)?;
        }
        let json = serde_json::to_vec(&self.doc).map_err(io::Error::other)?;
        if json.len() as u64 > MAX_STATE_BYTES {
            return Err(io::Error::other(format!(
                "the state file would exceed {MAX_STATE_BYTES} bytes; not taking more members"
            )));
        }
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(STATE_MODE)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(|e| ctx(e, "creating"))?;
        f.write_all(&json).map_err(|e| ctx(e, "writing"))?;
        f.sync_all().map_err(|e| ctx(e, "syncing"))?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("renaming {} to {}: {e}", tmp.display(), path.display()),
            )
        })?;
        sync_dir(&self.run_dir)
    }
}

fn remove_file(run_dir: &Path, group: &str) -> io::Result<()> {
    let path = state_path(run_dir, group);
    match std::fs::remove_file(&path) {
        Ok(()) => sync_dir(run_dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("removing {}: {e}", path.display()),
        )),
    }
}

/// Makes a rename or unlink in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io::Error::new(e.kind(), format!("syncing {}: {e}", dir.display())))
}

/// Puts `link` (the device `rec` was taken from) back as `rec` says:
/// up/down, MTU, the sysctls, then the IPv6 addresses (they can only be
/// added once IPv6 is on again), then the IPv6 routes (which may need the
/// addresses). Returns what it changed, for the log.
/// Every step is idempotent, so a restore interrupted by another crash is
/// simply done again.
pub fn restore_member(nl: &mut Handle, rec: &MemberRecord, link: &LinkInfo) -> io::Result<Vec<String>> {
    let mut done = Vec::new();
    if link.up != rec.up {
        nl.set_up(link.index, rec.up)?;
        done.push(if rec.up { "set up" } else { "set down" }.to_string());
    }
    if link.mtu != rec.mtu {
        nl.set_mtu(link.index, rec.mtu)?;
        done.push(format!("MTU {} to {}", link.mtu, rec.mtu));
    }
    for s in &rec.sysctls {
        // Only the sysctls ipmpd changes (validated on load; checked again
        // here because this is the one place a record turns into a write).
        let Some((family, key, _)) = ISOLATION_SYSCTLS
            .iter()
            .find(|(f, k, _)| *f == s.family && *k == s.key)
        else {
            continue;
        };
        let now = sysctl::read(family, &link.name, key)?;
        if now != s.value {
            sysctl::write(family, &link.name, key, &s.value)?;
            done.push(format!("{key} {now} to {}", s.value));
        }
    }
    if !rec.ipv6.is_empty() && sysctl::read("ipv6", &link.name, "disable_ipv6")? == "0" {
        let present: Vec<(Ipv6Addr, u8)> = nl
            .ipv6_address_details()?
            .into_iter()
            .filter(|d| d.index == link.index)
            .map(|d| (d.addr, d.prefix_len))
            .collect();
        // The kernel lists a link's addresses newest first (within a scope),
        // as they were recorded: adding them oldest first restores the order.
        for a in rec
            .ipv6
            .iter()
            .rev()
            .filter(|a| !present.contains(&(a.addr, a.prefix_len)))
        {
            nl.add_address_v6(link.index, &a.to_detail(link.index))?;
            done.push(format!("{}/{} added back", a.addr, a.prefix_len));
        }
    }
    if !rec.routes6.is_empty() && sysctl::read("ipv6", &link.name, "disable_ipv6")? == "0" {
        let present: Vec<RouteRecord> = nl
            .ipv6_route_details()?
            .iter()
            .filter(|r| r.oif == link.index)
            .map(RouteRecord::from_detail)
            .collect();
        for r in rec.routes6.iter().filter(|r| !present.contains(r)) {
            // A route can depend on more than this member (a gateway reached
            // through an address that is not back yet): a warning, not a
            // reason to keep the whole member unrestored.
            match nl.add_route_v6(&r.to_detail(link.index)) {
                Ok(()) => done.push(format!("{} added back", r.describe())),
                Err(e) => log::warn!("{}: {} not added back: {e}", link.name, r.describe()),
            }
        }
    }
    Ok(done)
}

/// At start-up, with the group's pid lock held: gives back every member a
/// dead daemon left changed, then deletes its state file. A restore that
/// fails keeps the file (the next start tries again) and fails the start,
/// since recording members that are not as they were would lose the
/// originals for good.
pub fn restore_stale(run_dir: &Path, group: &str, nl: &mut Handle) -> Result<(), super::Error> {
    let doc = match load(run_dir, group) {
        Ok(Some(doc)) => doc,
        Ok(None) => return Ok(()),
        Err(e) => {
            return Err(super::Error::Refused(format!(
                "{e}. It holds the original settings of members a previous ipmpd of group {group} changed; \
                 check them by hand, then remove the file"
            )))
        }
    };
    let path = state_path(run_dir, group);
    log::warn!(
        "{} left by ipmpd pid {} that did not shut down cleanly: restoring {} member(s)",
        path.display(),
        doc.pid,
        doc.members.len()
    );
    let links = nl
        .links()
        .map_err(|e| super::Error::Failed(format!("restoring from {}: {e}", path.display())))?;
    let mut failed = Vec::new();
    for rec in &doc.members {
        let Some(link) = links.iter().find(|l| l.index == rec.ifindex) else {
            log::info!(
                "{} (index {}) no longer exists: nothing to restore",
                rec.name,
                rec.ifindex
            );
            continue;
        };
        if !rec.same_device(link) {
            log::warn!(
                "index {} is now {}, with another name and MAC than {}: not the same device, not restored",
                rec.ifindex,
                link.name,
                rec.name
            );
            continue;
        }
        // The dead daemon's tcx programs went with it: one there now belongs
        // to a live daemon (another group) or tool, which owns the member.
        if crate::sys::bpf::tcx_ingress_count(link.index).unwrap_or(0) > 0 {
            log::warn!(
                "{} is held by another ipmpd group or tool now (tcx program attached): not restored",
                link.name
            );
            continue;
        }
        match restore_member(nl, rec, link) {
            Ok(done) if done.is_empty() => log::info!("{} was already as found", link.name),
            Ok(done) => log::info!("{} restored: {}", link.name, done.join(", ")),
            Err(e) => failed.push(format!("{}: {e}", link.name)),
        }
    }
    if !failed.is_empty() {
        return Err(super::Error::Failed(format!(
            "restoring members from {} failed ({}); the file is kept for the next start",
            path.display(),
            failed.join("; ")
        )));
    }
    remove_file(run_dir, group).map_err(|e| super::Error::Failed(format!("members restored, but {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ifindex: u32, name: &str) -> MemberRecord {
        MemberRecord {
            name: name.into(),
            ifindex,
            mac: [2, 0, 0, 0, 0, ifindex as u8],
            mtu: 1500,
            up: false,
            sysctls: vec![SysctlRecord {
                family: "ipv6".into(),
                key: "disable_ipv6".into(),
                value: "0".into(),
            }],
            ipv6: vec![AddrRecord {
                addr: "2001:db8::10".parse().unwrap(),
                prefix_len: 64,
                flags: netlink::IFA_F_NODAD,
                preferred_lft: netlink::INFINITY_LIFE_TIME,
                proto: 0,
                metric: None,
            }],
            routes6: vec![RouteRecord {
                table: 254,
                protocol: 3,
                dst: "2001:db8:99::".parse().unwrap(),
                dst_len: 64,
                gateway: Some("2001:db8::1".parse().unwrap()),
                metric: Some(1024),
                onlink: false,
                pref: Some(0),
            }],
        }
    }

    fn doc(members: Vec<MemberRecord>) -> StateDoc {
        StateDoc {
            version: STATE_VERSION,
            group: "production0".into(),
            pid: 42,
            members,
        }
    }

    fn parse_err(d: &StateDoc) -> String {
        let bytes = serde_json::to_vec(d).unwrap();
        StateDoc::parse(&bytes, "production0").unwrap_err()
    }

    #[test]
    fn round_trip() {
        let d = doc(vec![rec(3, "e1000g0"), rec(4, "e1000g1")]);
        let bytes = serde_json::to_vec_pretty(&d).unwrap();
        assert_eq!(StateDoc::parse(&bytes, "production0").unwrap(), d);
    }

    #[test]
    fn refuses_malformed_and_foreign_files() {
        assert!(StateDoc::parse(b"", "production0")
            .unwrap_err()
            .contains("not valid"));
        assert!(StateDoc::parse(b"{\"version\":1", "production0").is_err());
        assert!(StateDoc::parse(&[0xff; 10], "production0").is_err());
        let big = vec![b' '; MAX_STATE_BYTES as usize + 1];
        assert!(StateDoc::parse(&big, "production0")
            .unwrap_err()
            .contains("larger"));

        let mut d = doc(vec![rec(3, "e1000g0")]);
        d.version = 2;
        assert!(parse_err(&d).contains("version 2"));
        let mut d = doc(vec![]);
        d.group = "other0".into();
        assert!(parse_err(&d).contains("other0"));

        // Unknown fields are not ignored.
        let mut v = serde_json::to_value(doc(vec![rec(3, "e1000g0")])).unwrap();
        v["members"][0]["script"] = "rm -rf /".into();
        let e = StateDoc::parse(&serde_json::to_vec(&v).unwrap(), "production0").unwrap_err();
        assert!(e.contains("script"), "{e}");
    }

    #[test]
    fn refuses_records_ipmpd_could_not_have_written() {
        type Mutation = Box<dyn Fn(&mut MemberRecord)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|r| r.name = "../../etc".into()), "member name"),
            (Box::new(|r| r.name = String::new()), "member name"),
            (Box::new(|r| r.ifindex = 0), "ifindex"),
            (Box::new(|r| r.mtu = 10), "MTU"),
            (Box::new(|r| r.mtu = 1 << 20), "MTU"),
            (
                Box::new(|r| r.sysctls[0].key = "forwarding".into()),
                "not one ipmpd changes",
            ),
            (
                Box::new(|r| r.sysctls[0].family = "ipv4".into()),
                "not one ipmpd changes",
            ),
            (
                Box::new(|r| r.sysctls[0].value = "1; reboot".into()),
                "invalid value",
            ),
            (Box::new(|r| r.sysctls[0].value = String::new()), "invalid value"),
            (
                Box::new(|r| r.sysctls.push(r.sysctls[0].clone())),
                "sysctls recorded",
            ),
            (Box::new(|r| r.ipv6[0].prefix_len = 129), "prefix length"),
            (
                Box::new(|r| r.ipv6[0].addr = "ff02::1".parse().unwrap()),
                "unicast",
            ),
            (Box::new(|r| r.ipv6[0].addr = Ipv6Addr::UNSPECIFIED), "unicast"),
            (Box::new(|r| r.ipv6[0].flags = netlink::IFA_F_PERMANENT), "flags"),
            (Box::new(|r| r.ipv6[0].preferred_lft = 7), "lifetime"),
            (
                Box::new(|r| r.ipv6 = vec![r.ipv6[0].clone(); MAX_ADDRS_PER_MEMBER + 1]),
                "IPv6 addresses recorded",
            ),
            (Box::new(|r| r.routes6[0].dst_len = 129), "prefix length"),
            (Box::new(|r| r.routes6[0].table = 255), "kernel's own"),
            (Box::new(|r| r.routes6[0].protocol = 2), "kernel's own"),
            (
                Box::new(|r| r.routes6[0].gateway = Some("ff02::1".parse().unwrap())),
                "gateway",
            ),
            (Box::new(|r| r.routes6[0].pref = Some(2)), "preference"),
            (
                Box::new(|r| r.routes6 = vec![r.routes6[0].clone(); MAX_ROUTES_PER_MEMBER + 1]),
                "routes recorded",
            ),
        ];
        for (mutate, expect) in cases {
            let mut r = rec(3, "e1000g0");
            mutate(&mut r);
            let e = parse_err(&doc(vec![r]));
            assert!(e.contains(expect), "{expect}: {e}");
        }
        let e = parse_err(&doc(vec![rec(3, "a"), rec(3, "b")]));
        assert!(e.contains("recorded twice"), "{e}");
        let many = (1..=MAX_STATE_MEMBERS as u32 + 1).map(|i| rec(i, "m")).collect();
        assert!(parse_err(&doc(many)).contains("members"));
    }

    #[test]
    fn identity_needs_the_ifindex_and_the_name_or_the_mac() {
        let r = rec(3, "e1000g0");
        let mut l = LinkInfo {
            index: 3,
            name: "e1000g0".into(),
            mac: Some(r.mac),
            mtu: 1500,
            up: true,
            lower_up: true,
            master: None,
            link: None,
            kind: None,
        };
        assert!(r.same_device(&l));
        l.name = "renamed0".into();
        assert!(r.same_device(&l), "renamed, same MAC");
        l.mac = Some([2, 0, 0, 0, 0, 99]);
        assert!(!r.same_device(&l), "neither name nor MAC");
        l.name = "e1000g0".into();
        assert!(r.same_device(&l), "same name, MAC changed");
        l.index = 9;
        assert!(!r.same_device(&l), "another ifindex: a new device");
    }

    #[test]
    fn only_hand_configured_addresses_are_recorded() {
        let d = |flags, proto| Addr6Detail {
            index: 3,
            addr: "2001:db8::1".parse().unwrap(),
            prefix_len: 64,
            flags,
            valid_lft: u32::MAX,
            preferred_lft: u32::MAX,
            proto,
            metric: None,
        };
        let perm = netlink::IFA_F_PERMANENT;
        assert!(AddrRecord::wanted(&d(perm | netlink::IFA_F_NODAD, 0)));
        assert!(!AddrRecord::wanted(&d(0, 0)), "dynamic (SLAAC, DHCPv6)");
        assert!(!AddrRecord::wanted(&d(perm | netlink::IFA_F_TEMPORARY, 0)));
        assert!(!AddrRecord::wanted(&d(perm, netlink::IFAPROT_KERNEL_LL)));
        let r = AddrRecord::from_detail(&d(perm | netlink::IFA_F_NODAD | 0x40, 0));
        assert_eq!(r.flags, netlink::IFA_F_NODAD, "tentative is state, not restored");
    }

    #[test]
    fn file_is_written_atomically_0600_and_removed_with_its_last_record() {
        let dir = std::env::temp_dir().join(format!("ipmpd-state-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let st = StateFile::new(&dir, "production0");
        st.borrow_mut().add(rec(3, "e1000g0")).unwrap();
        st.borrow_mut().add(rec(4, "e1000g1")).unwrap();
        let path = state_path(&dir, "production0");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert!(!tmp_path(&dir, "production0").exists());
        let loaded = load(&dir, "production0").unwrap().unwrap();
        assert_eq!(loaded.members.len(), 2);
        assert_eq!(loaded.pid, std::process::id());
        st.borrow_mut().remove(3).unwrap();
        assert_eq!(
            load(&dir, "production0").unwrap().unwrap().members,
            vec![rec(4, "e1000g1")]
        );
        st.borrow_mut().remove(4).unwrap();
        assert!(!path.exists());
        assert!(load(&dir, "production0").unwrap().is_none());

        // Symlinks and files others may read are refused, with the path.
        std::os::unix::fs::symlink("/etc/passwd", &path).unwrap();
        let e = load(&dir, "production0").unwrap_err();
        assert!(
            e.contains("symbolic link") && e.contains("production0.state"),
            "{e}"
        );
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"{}").unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        assert!(load(&dir, "production0").unwrap_err().contains("mode 644"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
