//! The member isolation program: a tcx ingress program that drops every
//! frame after the ETH_P_ALL packet sockets have seen it, so the kernel never
//! handles member traffic itself. Two raw instructions loaded with bpf(2);
//! held by a bpf_link, so it is detached when the daemon exits or dies.

use super::cvt;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use thiserror::Error;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_LINK_UPDATE: libc::c_long = 29;
const BPF_MAP_TYPE_ARRAY: u32 = 2;
const BPF_MAP_TYPE_ARRAY_OF_MAPS: u32 = 12;
/// Bytes of verifier log kept when a program is refused (for the log line).
const VERIFIER_LOG: usize = 64 * 1024;
/// The verifier's log level for a refused program: the failing instruction.
const LOG_LEVEL_ERRORS: u32 = 1;
const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
/// `enum bpf_attach_type` value of tcx ingress (kernel 6.6+).
pub const BPF_TCX_INGRESS: u32 = 46;
/// `enum bpf_attach_type` value of tcx egress (kernel 6.6+).
pub const BPF_TCX_EGRESS: u32 = 47;
/// tcx verdict: drop.
pub const TCX_DROP: i32 = 2;
/// tcx verdict of a redirect (a program's `bpf_redirect` return value).
pub const TCX_REDIRECT: i32 = 7;
/// Shown by `bpftool prog` / `bpftool net`, so an administrator can tell whose program it is.
pub const PROG_NAME: &[u8] = b"ipmpd_member";
/// The group interface's egress program (the outbound fast path).
pub const EGRESS_PROG_NAME: &[u8] = b"ipmpd_egress";
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;

/// One eBPF instruction (`struct bpf_insn`): destination register in the
/// low nibble of `regs`, source in the high one.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

/// r0 = TCX_DROP; exit.
const DROP_ALL: [Insn; 2] = [
    Insn {
        code: 0xb7, // BPF_ALU64 | BPF_MOV | BPF_K
        regs: 0,
        off: 0,
        imm: TCX_DROP,
    },
    Insn {
        code: 0x95, // BPF_JMP | BPF_EXIT
        regs: 0,
        off: 0,
        imm: 0,
    },
];

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
    relative_fd: u32,
    _pad: u32,
    expected_revision: u64,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_ifindex: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    count: u32,
    _pad: u32,
    prog_attach_flags: u64,
    link_ids: u64,
    link_attach_flags: u64,
    revision: u64,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_int> {
    // SAFETY: attr is a live, properly laid out bpf_attr prefix and its size
    // is passed; the kernel zero-extends the rest.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, size_of::<T>() as u32) };
    cvt(r as libc::c_int)
}

/// Why the member program could not be attached.
#[derive(Debug, Error)]
pub enum TcxError {
    #[error("loading the member tcx program: {0}")]
    Load(#[source] io::Error),
    #[error("querying tcx programs on {ifname}: {source}")]
    Query {
        ifname: String,
        #[source]
        source: io::Error,
    },
    /// Some program is already attached: another ipmpd (or another tool)
    /// owns the member.
    #[error("{ifname} already has a tcx ingress program attached (another ipmpd group?)")]
    Taken { ifname: String },
    /// Another program was attached between our query and our attach (the
    /// kernel's revision check, ESTALE).
    #[error("another tcx program was attached to {ifname} at the same time (another ipmpd group?)")]
    Raced { ifname: String },
    #[error("attaching the tcx ingress program to {ifname} (needs kernel 6.6+): {source}")]
    Attach {
        ifname: String,
        #[source]
        source: io::Error,
    },
}

impl TcxError {
    /// The member is someone else's: [`TcxError::Taken`] or [`TcxError::Raced`].
    pub fn is_taken(&self) -> bool {
        matches!(self, TcxError::Taken { .. } | TcxError::Raced { .. })
    }

    pub fn kind(&self) -> io::ErrorKind {
        match self {
            TcxError::Load(source) | TcxError::Query { source, .. } | TcxError::Attach { source, .. } => {
                source.kind()
            }
            TcxError::Taken { .. } | TcxError::Raced { .. } => io::ErrorKind::AlreadyExists,
        }
    }
}

/// For callers that work in `io::Result`: same text and kind.
impl From<TcxError> for io::Error {
    fn from(e: TcxError) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}

/// The attached program; dropping it detaches the program from the member.
pub struct TcxLink {
    _link: OwnedFd,
}

#[repr(C)]
#[derive(Default)]
struct LinkUpdateAttr {
    link_fd: u32,
    new_prog_fd: u32,
    flags: u32,
    old_prog_fd: u32,
}

impl TcxLink {
    /// Replaces the attached program with `prog`, atomically: every frame
    /// meets either the old program or the new one.
    pub fn update(&self, prog: &OwnedFd) -> io::Result<()> {
        let mut attr = LinkUpdateAttr {
            link_fd: self._link.as_raw_fd() as u32,
            new_prog_fd: prog.as_raw_fd() as u32,
            ..Default::default()
        };
        bpf(BPF_LINK_UPDATE, &mut attr).map(|_| ())
    }
}

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// (frames, bytes) of a counters entry (two native u64); zero where short.
pub fn frames_and_bytes(entry: &[u8]) -> (u64, u64) {
    let word = |i: usize| {
        entry
            .get(i * 8..i * 8 + 8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_ne_bytes)
    };
    (word(0), word(1))
}

/// Copies `name`, cut short, into a kernel object's name field, leaving its
/// NUL.
fn set_name(field: &mut [u8; 16], name: &[u8]) {
    let n = name.len().min(field.len() - 1);
    field[..n].copy_from_slice(&name[..n]);
}

/// A BPF array of one entry of two u64 (frames, bytes) that a program
/// counts into; closed with the last program using it and this handle.
pub struct CounterMap(ArrayMap);

/// Bytes of a [`CounterMap`] entry.
pub const COUNTER_VALUE: u32 = 16;

impl CounterMap {
    pub fn new() -> io::Result<CounterMap> {
        ArrayMap::new(COUNTER_VALUE, 1, PROG_NAME).map(CounterMap)
    }

    /// The descriptor a program's ld_imm64 names the map by.
    pub fn raw_fd(&self) -> i32 {
        self.0.raw_fd()
    }

    /// (frames, bytes) counted so far.
    pub fn read(&self) -> io::Result<(u64, u64)> {
        self.0.read(0).map(|v| frames_and_bytes(&v))
    }
}

/// A BPF array of `entries` values of `value_size` bytes, keyed 0.., that
/// programs read or count into and the daemon writes whole values of.
pub struct ArrayMap {
    fd: OwnedFd,
    value_size: usize,
    entries: u32,
}

impl ArrayMap {
    /// A map named `name` (at most 15 bytes, shown by `bpftool map`).
    pub fn new(value_size: u32, entries: u32, name: &[u8]) -> io::Result<ArrayMap> {
        let mut attr = MapCreateAttr {
            map_type: BPF_MAP_TYPE_ARRAY,
            key_size: size_of::<u32>() as u32,
            value_size,
            max_entries: entries,
            ..Default::default()
        };
        set_name(&mut attr.map_name, name);
        let fd = bpf(BPF_MAP_CREATE, &mut attr)?;
        Ok(ArrayMap {
            // SAFETY: fd is a fresh descriptor we own.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            value_size: value_size as usize,
            entries,
        })
    }

    /// The descriptor a program's ld_imm64 names the map by.
    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Replaces entry `key` with `value` (exactly the value size).
    pub fn write(&self, key: u32, value: &[u8]) -> io::Result<()> {
        if value.len() != self.value_size || key >= self.entries {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let mut attr = MapElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: &key as *const u32 as u64,
            value: value.as_ptr() as u64,
            ..Default::default()
        };
        bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(|_| ())
    }

    /// Entry `key`.
    pub fn read(&self, key: u32) -> io::Result<Vec<u8>> {
        if key >= self.entries {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let mut value = vec![0u8; self.value_size];
        let mut attr = MapElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: &key as *const u32 as u64,
            value: value.as_mut_ptr() as u64,
            ..Default::default()
        };
        bpf(BPF_MAP_LOOKUP_ELEM, &mut attr)?;
        Ok(value)
    }
}

/// One value that programs read and the daemon replaces whole and
/// atomically: an array of maps whose only entry is a one-entry array
/// holding the value. A new value goes into a fresh inner array, which one
/// update then swaps in, so a program sees the old value or the new one,
/// never a mix (an array's own update copies in place under readers).
pub struct SnapshotMap {
    outer: OwnedFd,
    value_size: u32,
    name: Vec<u8>,
}

impl SnapshotMap {
    /// Holding `value_size` zero bytes at first.
    pub fn new(value_size: u32, name: &[u8]) -> io::Result<SnapshotMap> {
        let template = ArrayMap::new(value_size, 1, name)?;
        let mut attr = MapCreateAttr {
            map_type: BPF_MAP_TYPE_ARRAY_OF_MAPS,
            key_size: size_of::<u32>() as u32,
            value_size: size_of::<u32>() as u32,
            max_entries: 1,
            inner_map_fd: template.raw_fd() as u32,
            ..Default::default()
        };
        set_name(&mut attr.map_name, name);
        let fd = bpf(BPF_MAP_CREATE, &mut attr)?;
        let s = SnapshotMap {
            // SAFETY: fd is a fresh descriptor we own.
            outer: unsafe { OwnedFd::from_raw_fd(fd) },
            value_size,
            name: name.to_vec(),
        };
        // A fresh array holds zeros: the template is the first value.
        s.swap_in(&template)?;
        Ok(s)
    }

    /// The outer map's descriptor, which a program's ld_imm64 names.
    pub fn raw_fd(&self) -> i32 {
        self.outer.as_raw_fd()
    }

    /// Swaps in `value` (exactly the value size).
    pub fn replace(&self, value: &[u8]) -> io::Result<()> {
        let inner = ArrayMap::new(self.value_size, 1, &self.name)?;
        inner.write(0, value)?;
        self.swap_in(&inner)
    }

    /// Makes `inner` the value programs see.
    fn swap_in(&self, inner: &ArrayMap) -> io::Result<()> {
        let key = 0u32;
        let inner_fd = inner.raw_fd() as u32;
        let mut attr = MapElemAttr {
            map_fd: self.outer.as_raw_fd() as u32,
            key: &key as *const u32 as u64,
            value: &inner_fd as *const u32 as u64,
            ..Default::default()
        };
        // The outer map holds the inner one from here; our descriptor of
        // it closes when `inner` drops.
        bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(|_| ())
    }
}

#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
}

/// Runs a loaded program once on `frame` (BPF_PROG_TEST_RUN): its return
/// value and the frame as it left. For tests of the program's decisions.
pub fn test_run(prog: &OwnedFd, frame: &[u8]) -> io::Result<(u32, Vec<u8>)> {
    let mut out = vec![0u8; frame.len()];
    let mut attr = TestRunAttr {
        prog_fd: prog.as_raw_fd() as u32,
        data_size_in: frame.len() as u32,
        data_size_out: out.len() as u32,
        data_in: frame.as_ptr() as u64,
        data_out: out.as_mut_ptr() as u64,
        repeat: 1,
        ..Default::default()
    };
    bpf(BPF_PROG_TEST_RUN, &mut attr)?;
    out.truncate(attr.data_size_out as usize);
    Ok((attr.retval, out))
}

/// Runs a loaded program `repeat` times on `frame` in the kernel: its
/// return value and the kernel's average time per run in ns (for the
/// benchmark of the fast paths' programs).
pub fn test_run_timed(prog: &OwnedFd, frame: &[u8], repeat: u32) -> io::Result<(u32, u32)> {
    let mut attr = TestRunAttr {
        prog_fd: prog.as_raw_fd() as u32,
        data_size_in: frame.len() as u32,
        data_in: frame.as_ptr() as u64,
        repeat,
        ..Default::default()
    };
    bpf(BPF_PROG_TEST_RUN, &mut attr)?;
    Ok((attr.retval, attr.duration))
}

/// Loads a tcx (sched_cls) program. A refusal carries the verifier's last
/// log line.
pub fn load_program(insns: &[Insn]) -> io::Result<OwnedFd> {
    load_named(insns, PROG_NAME)
}

/// [`load_program`] under another name (at most 15 bytes).
pub fn load_named(insns: &[Insn], name: &[u8]) -> io::Result<OwnedFd> {
    let license = c"GPL";
    let mut load = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_SCHED_CLS,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    set_name(&mut load.prog_name, name);
    let e = match bpf(BPF_PROG_LOAD, &mut load) {
        // SAFETY: prog is a fresh descriptor we own.
        Ok(prog) => return Ok(unsafe { OwnedFd::from_raw_fd(prog) }),
        Err(e) => e,
    };
    // Once more with the verifier's log, to say why.
    let mut log = vec![0u8; VERIFIER_LOG];
    load.log_level = LOG_LEVEL_ERRORS;
    load.log_size = log.len() as u32;
    load.log_buf = log.as_mut_ptr() as u64;
    if let Ok(prog) = bpf(BPF_PROG_LOAD, &mut load) {
        // SAFETY: prog is a fresh descriptor we own.
        return Ok(unsafe { OwnedFd::from_raw_fd(prog) });
    }
    let text =
        String::from_utf8_lossy(&log[..log.iter().position(|&b| b == 0).unwrap_or(log.len())]).into_owned();
    let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    log::debug!("verifier log:\n{text}");
    Err(io::Error::new(e.kind(), format!("{e} (verifier: {last})")))
}

/// Attaches the drop-all program to `ifindex`'s tcx ingress.
pub fn attach_drop_all(ifindex: u32, ifname: &str) -> Result<TcxLink, TcxError> {
    let prog = load_program(&DROP_ALL).map_err(TcxError::Load)?;
    // Attach only if nothing was attached since we looked: the kernel checks
    // the revision atomically, so two daemons can never both take a member.
    let (count, revision) = tcx_ingress_query(ifindex).map_err(|source| TcxError::Query {
        ifname: ifname.to_string(),
        source,
    })?;
    if count > 0 {
        return Err(TcxError::Taken {
            ifname: ifname.to_string(),
        });
    }
    link_create(&prog, ifindex, BPF_TCX_INGRESS, revision).map_err(|source| {
        let ifname = ifname.to_string();
        // The syscall's own errno, straight from bpf(2).
        if source.raw_os_error() == Some(libc::ESTALE) {
            TcxError::Raced { ifname }
        } else {
            TcxError::Attach { ifname, source }
        }
    })
}

/// Attaches `prog` to `ifindex` at tcx `attach_type`, at the end of its
/// programs; `revision` nonzero: only if the attachment list is still at
/// that revision (ESTALE otherwise).
fn link_create(prog: &OwnedFd, ifindex: u32, attach_type: u32, revision: u64) -> io::Result<TcxLink> {
    let mut link = LinkCreateAttr {
        prog_fd: prog.as_raw_fd() as u32,
        target_ifindex: ifindex,
        attach_type,
        expected_revision: revision,
        ..Default::default()
    };
    let fd = bpf(BPF_LINK_CREATE, &mut link)?;
    // SAFETY: fd is a fresh descriptor we own; the link keeps the program alive.
    Ok(TcxLink {
        _link: unsafe { OwnedFd::from_raw_fd(fd) },
    })
}

/// Attaches `prog` to `ifindex`'s tcx egress, after any program already
/// there (the group interface is ours; another tool's program keeps
/// running first).
pub fn attach_egress(ifindex: u32, prog: &OwnedFd) -> io::Result<TcxLink> {
    link_create(prog, ifindex, BPF_TCX_EGRESS, 0)
}

/// Number of tcx ingress programs attached to `ifindex`: another ipmpd (or
/// any other tool) already owning the member shows up here.
pub fn tcx_ingress_count(ifindex: u32) -> io::Result<u32> {
    tcx_ingress_query(ifindex).map(|(count, _)| count)
}

/// (programs attached, revision of the attachment list).
fn tcx_ingress_query(ifindex: u32) -> io::Result<(u32, u64)> {
    let mut q = QueryAttr {
        target_ifindex: ifindex,
        attach_type: BPF_TCX_INGRESS,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut q)?;
    Ok((q.count, q.revision))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::testns::*;

    #[test]
    fn attach_counts_and_detaches_on_drop() {
        in_new_netns(|| {
            sh("ip link add d0 type veth peer name d1 && ip link set d0 up");
            let idx = ifindex("d0");
            assert_eq!(tcx_ingress_count(idx).unwrap(), 0);
            let link = attach_drop_all(idx, "d0").unwrap();
            assert_eq!(tcx_ingress_count(idx).unwrap(), 1);
            let e = attach_drop_all(idx, "d0").err().expect("second attach refused");
            assert!(matches!(e, TcxError::Taken { .. }) && e.is_taken(), "{e}");
            assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
            assert_eq!(
                e.to_string(),
                "d0 already has a tcx ingress program attached (another ipmpd group?)"
            );
            drop(link);
            // The kernel may release the link from a workqueue: allow it a moment.
            let gone = (0..200).any(|_| {
                std::thread::sleep(std::time::Duration::from_millis(10));
                tcx_ingress_count(idx).unwrap() == 0
            });
            assert!(gone, "program still attached after the link was dropped");
        });
    }
}
