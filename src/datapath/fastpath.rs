//! The inbound fast path: which frames received on a member the kernel
//! itself may hand to the group interface, and the two programs that do it.
//!
//! A "fast" frame is one the user-space path ([`super::plan::divert`], then
//! [`super::plan::inbound`]) would deliver unchanged except for the
//! destination MAC rewrite: untagged unicast TCP or UDP (IPv4, or IPv6 with
//! no extension header) to the member's MAC, from a MAC that is not one of
//! the group's own, not for a test address, on a member that accepts
//! traffic. The member's tcx program rewrites and redirects exactly those
//! into the group interface's receive path; the member's data socket filter
//! keeps exactly those out of user space. Both are built here from one
//! [`FastSpec`], and [`FastSpec::matches`] is the same predicate in Rust,
//! tested against the user-space decisions.

use super::buckets::Slot;
use super::frame::{Mac, ETH_HLEN, ETH_P_IP, ETH_P_IPV6, IPPROTO_TCP, IPPROTO_UDP};
use super::plan::Plan;
use crate::sys::bpf::Insn;
use crate::wire::{ethernet, ipv4, ipv6};
use std::net::{Ipv4Addr, Ipv6Addr};

/// What a member's fast-path programs depend on (the tap's ifindex aside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastSpec {
    pub member_mac: Mac,
    pub group_mac: Mac,
    /// The group's MAC and every member's: a frame from one of them looped.
    pub own_macs: Vec<Mac>,
    pub test_addr: Option<Ipv4Addr>,
    pub test_addr6: Option<Ipv6Addr>,
}

// Where the predicate looks, in an untagged frame.
const AT_DST: usize = ethernet::field::DESTINATION.start;
const AT_SRC: usize = ethernet::field::SOURCE.start;
const AT_ETHERTYPE: usize = ethernet::field::ETHERTYPE.start;
const AT_IP_PROTOCOL: usize = ETH_HLEN + ipv4::field::PROTOCOL;
const AT_IP_DST: usize = ETH_HLEN + ipv4::field::DST_ADDR.start;
/// Bytes an IPv4 frame needs for the predicate: up to the destination
/// address (the user-space path's minimum IPv4 header, too).
pub const MIN_IPV4: usize = ETH_HLEN + ipv4::MIN_HEADER_LEN;
const AT_IP6_NEXT_HEADER: usize = ETH_HLEN + ipv6::field::NXT_HDR;
const AT_IP6_DST: usize = ETH_HLEN + ipv6::field::DST_ADDR.start;
/// Bytes an IPv6 frame needs: the whole fixed header.
pub const MIN_IPV6: usize = ETH_HLEN + ipv6::HEADER_LEN;

impl FastSpec {
    /// The spec of member `slot` under `plan`; None when the member takes no
    /// fast frames (absent, or offline: it accepts nothing).
    pub fn of(plan: &Plan, slot: Slot) -> Option<FastSpec> {
        let port = plan.ports.get(usize::from(slot)).and_then(Option::as_ref)?;
        if !port.accept {
            return None;
        }
        let mut own_macs = vec![plan.group_mac];
        for p in plan.ports.iter().flatten() {
            if !own_macs.contains(&p.mac) {
                own_macs.push(p.mac);
            }
        }
        Some(FastSpec {
            member_mac: port.mac,
            group_mac: plan.group_mac,
            own_macs,
            test_addr: port.test_addr,
            test_addr6: port.test_addr6,
        })
    }

    /// Whether `frame` (as received, `tagged` when the NIC took a VLAN tag
    /// off) is a fast frame.
    pub fn matches(&self, frame: &[u8], tagged: bool) -> bool {
        if tagged || frame.len() < MIN_IPV4 {
            return false;
        }
        if frame[AT_DST..AT_DST + 6] != self.member_mac {
            return false;
        }
        if self.own_macs.iter().any(|m| frame[AT_SRC..AT_SRC + 6] == *m) {
            return false;
        }
        let ethertype = u16::from_be_bytes([frame[AT_ETHERTYPE], frame[AT_ETHERTYPE + 1]]);
        let l4 = |p: u8| p == IPPROTO_TCP || p == IPPROTO_UDP;
        match ethertype {
            ETH_P_IP => {
                l4(frame[AT_IP_PROTOCOL])
                    && self.test_addr.map(|t| t.octets()) != frame[AT_IP_DST..AT_IP_DST + 4].try_into().ok()
            }
            ETH_P_IPV6 => {
                frame.len() >= MIN_IPV6
                    && l4(frame[AT_IP6_NEXT_HEADER])
                    && self.test_addr6.map(|t| t.octets())
                        != frame[AT_IP6_DST..AT_IP6_DST + 16].try_into().ok()
            }
            _ => false,
        }
    }
}

/// Whether a frame received on member `slot` is a fast frame under `plan`
/// (VLAN tags, if any, back in the frame, as user space sees it).
pub fn fast_inbound(plan: &Plan, slot: Slot, frame: &[u8]) -> bool {
    FastSpec::of(plan, slot).is_some_and(|s| s.matches(frame, false))
}

// ---------------------------------------------------------------------------
// The socket filter (classic BPF).

use crate::sys::cbpf::{
    AD_VLAN_TAG_PRESENT, JA, JEQ_K, JGE_K, LD_B_ABS, LD_H_ABS, LD_W_ABS, LD_W_LEN, RET_K,
};

/// Keep the whole frame.
pub const FILTER_ACCEPT: u32 = u32::MAX;
const FILTER_DROP: u32 = 0;

/// A jump target while assembling.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum To {
    Next,
    Label(usize),
}

/// A classic BPF sequence whose jump targets are labels until the end.
#[derive(Default)]
struct Cbpf {
    code: Vec<(u16, To, To, u32)>,
    labels: Vec<Option<usize>>,
}

impl Cbpf {
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn here(&mut self, l: usize) {
        self.labels[l] = Some(self.code.len());
    }
    fn op(&mut self, code: u16, k: u32) {
        self.code.push((code, To::Next, To::Next, k));
    }
    fn jump(&mut self, code: u16, k: u32, jt: To, jf: To) {
        self.code.push((code, jt, jf, k));
    }
    fn finish(self) -> Result<Vec<libc::sock_filter>, TooLong> {
        let resolve = |at: usize, to: To| -> Result<u8, TooLong> {
            match to {
                To::Next => Ok(0),
                To::Label(l) => {
                    let target = self.labels[l].ok_or(TooLong)?;
                    u8::try_from(target.checked_sub(at + 1).ok_or(TooLong)?).map_err(|_| TooLong)
                }
            }
        };
        self.code
            .iter()
            .enumerate()
            .map(|(at, &(code, jt, jf, k))| {
                // An unconditional jump keeps its offset in k.
                if code == JA {
                    return Ok(libc::sock_filter {
                        code,
                        jt: 0,
                        jf: 0,
                        k: u32::from(resolve(at, jt)?),
                    });
                }
                Ok(libc::sock_filter {
                    code,
                    jt: resolve(at, jt)?,
                    jf: resolve(at, jf)?,
                    k,
                })
            })
            .collect()
    }
}

pub use super::ebpf::TooLong;

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}
fn be16(b: &[u8]) -> u32 {
    u32::from(u16::from_be_bytes([b[0], b[1]]))
}

/// The member data socket's filter: it drops (keeps out of user space) a
/// frame that is fast under every spec of `specs`, and accepts the rest.
/// Several specs while programs are swapped: the frames fast under both
/// the old and the new spec only. An empty list, or a `None` (a member
/// that takes no fast frames), accepts everything.
pub fn socket_filter(specs: &[Option<&FastSpec>]) -> Result<Vec<libc::sock_filter>, TooLong> {
    let mut a = Cbpf::default();
    if specs.is_empty() || specs.iter().any(Option::is_none) {
        a.op(RET_K, FILTER_ACCEPT);
        return a.finish();
    }
    for spec in specs.iter().flatten() {
        // Each block ends with its own accept, so no jump spans two blocks.
        let accept = a.label();
        let fast = a.label();
        let v6 = a.label();
        let next = a.label();
        let acc = To::Label(accept);
        a.op(LD_W_ABS, AD_VLAN_TAG_PRESENT);
        a.jump(JEQ_K, 0, To::Next, acc);
        a.op(LD_W_LEN, 0);
        a.jump(JGE_K, MIN_IPV4 as u32, To::Next, acc);
        a.op(LD_W_ABS, AT_DST as u32);
        a.jump(JEQ_K, be32(&spec.member_mac[..4]), To::Next, acc);
        a.op(LD_H_ABS, (AT_DST + 4) as u32);
        a.jump(JEQ_K, be16(&spec.member_mac[4..]), To::Next, acc);
        for m in &spec.own_macs {
            let other = a.label();
            a.op(LD_W_ABS, AT_SRC as u32);
            a.jump(JEQ_K, be32(&m[..4]), To::Next, To::Label(other));
            a.op(LD_H_ABS, (AT_SRC + 4) as u32);
            a.jump(JEQ_K, be16(&m[4..]), acc, To::Next);
            a.here(other);
        }
        a.op(LD_H_ABS, AT_ETHERTYPE as u32);
        a.jump(JEQ_K, u32::from(ETH_P_IP), To::Next, To::Label(v6));
        a.op(LD_B_ABS, AT_IP_PROTOCOL as u32);
        let l4 = a.label();
        a.jump(JEQ_K, u32::from(IPPROTO_TCP), To::Label(l4), To::Next);
        a.jump(JEQ_K, u32::from(IPPROTO_UDP), To::Next, acc);
        a.here(l4);
        if let Some(t) = spec.test_addr {
            a.op(LD_W_ABS, AT_IP_DST as u32);
            a.jump(JEQ_K, u32::from(t), acc, To::Next);
        }
        a.jump(JA, 0, To::Label(fast), To::Next);
        a.here(v6);
        a.jump(JEQ_K, u32::from(ETH_P_IPV6), To::Next, acc);
        a.op(LD_W_LEN, 0);
        a.jump(JGE_K, MIN_IPV6 as u32, To::Next, acc);
        a.op(LD_B_ABS, AT_IP6_NEXT_HEADER as u32);
        let l4 = a.label();
        a.jump(JEQ_K, u32::from(IPPROTO_TCP), To::Label(l4), To::Next);
        a.jump(JEQ_K, u32::from(IPPROTO_UDP), To::Next, acc);
        a.here(l4);
        if let Some(t) = spec.test_addr6 {
            let o = t.octets();
            for (i, w) in o.chunks(4).enumerate() {
                a.op(LD_W_ABS, (AT_IP6_DST + 4 * i) as u32);
                let last = i == 3;
                // A word that differs: another destination, a fast frame.
                a.jump(JEQ_K, be32(w), if last { acc } else { To::Next }, To::Label(fast));
            }
        }
        a.here(fast);
        a.jump(JA, 0, To::Label(next), To::Next);
        a.here(accept);
        a.op(RET_K, FILTER_ACCEPT);
        a.here(next);
    }
    a.op(RET_K, FILTER_DROP);
    a.finish()
}

// ---------------------------------------------------------------------------
// The tcx program (eBPF).

use super::ebpf::*;

/// bpf_redirect flag: into the device's receive path.
const BPF_F_INGRESS: i32 = 1;

// Stack layout (offsets from the frame pointer r10; stack accesses must be
// aligned to their size, hence halfword loads of the copied headers).
/// The frame's first bytes, copied with bpf_skb_load_bytes (8-aligned).
const STACK_FRAME: i16 = -64;
/// The group's MAC, to store as destination.
const STACK_GROUP_MAC: i16 = -16;
/// The counters map's key.
const STACK_KEY: i16 = -4;

/// Loads the halfword at `at` of the copied frame into `reg`.
fn frame16(a: &mut Ebpf, reg: u8, at: usize) {
    a.i(insn(LDX_H, reg, FP, STACK_FRAME + at as i16, 0));
}

/// The member's tcx ingress program: fast frames (under `spec`) get the
/// group's MAC as destination, are counted in `map_fd` (a
/// [`crate::sys::bpf::CounterMap`] entry; -1 for none) and redirected into the receive
/// path of `tap_ifindex`; everything else is dropped, as by the drop-all
/// program (`spec` None: drop all).
pub fn tc_program(spec: Option<&FastSpec>, tap_ifindex: u32, map_fd: i32) -> Result<Vec<Insn>, TooLong> {
    let mut a = Ebpf::default();
    let drop = a.label();
    let Some(spec) = spec else {
        a.here(drop);
        a.ret(TCX_DROP);
        return a.finish();
    };
    let fast = a.label();
    let v6 = a.label();
    a.untagged_frame(STACK_FRAME, MIN_IPV4, drop);
    for (k, at) in (AT_DST..AT_DST + 6).step_by(2).enumerate() {
        frame16(&mut a, R1, at);
        a.jump(J32NE_K, R1, ne16(&spec.member_mac[2 * k..]), drop);
    }
    frame16(&mut a, R1, AT_SRC);
    frame16(&mut a, R2, AT_SRC + 2);
    frame16(&mut a, R3, AT_SRC + 4);
    for m in &spec.own_macs {
        let other = a.label();
        a.jump(J32NE_K, R1, ne16(&m[0..]), other);
        a.jump(J32NE_K, R2, ne16(&m[2..]), other);
        a.jump(J32EQ_K, R3, ne16(&m[4..]), drop);
        a.here(other);
    }
    frame16(&mut a, R1, AT_ETHERTYPE);
    a.jump(J32NE_K, R1, ne16(&ETH_P_IP.to_be_bytes()), v6);
    a.i(insn(LDX_B, R1, FP, STACK_FRAME + AT_IP_PROTOCOL as i16, 0));
    let l4 = a.label();
    a.jump(J32EQ_K, R1, i32::from(IPPROTO_TCP), l4);
    a.jump(J32NE_K, R1, i32::from(IPPROTO_UDP), drop);
    a.here(l4);
    if let Some(t) = spec.test_addr {
        let o = t.octets();
        frame16(&mut a, R1, AT_IP_DST);
        frame16(&mut a, R2, AT_IP_DST + 2);
        a.jump(J32NE_K, R1, ne16(&o[0..]), fast);
        a.jump(J32EQ_K, R2, ne16(&o[2..]), drop);
    }
    a.jump(EJA, 0, 0, fast);
    a.here(v6);
    a.jump(J32NE_K, R1, ne16(&ETH_P_IPV6.to_be_bytes()), drop);
    a.load_frame(STACK_FRAME, MIN_IPV6);
    a.jump(EJNE_K, R0, 0, drop);
    a.i(insn(LDX_B, R1, FP, STACK_FRAME + AT_IP6_NEXT_HEADER as i16, 0));
    let l4 = a.label();
    a.jump(J32EQ_K, R1, i32::from(IPPROTO_TCP), l4);
    a.jump(J32NE_K, R1, i32::from(IPPROTO_UDP), drop);
    a.here(l4);
    if let Some(t) = spec.test_addr6 {
        let o = t.octets();
        for k in 0..8 {
            frame16(&mut a, R1, AT_IP6_DST + 2 * k);
            a.jump(J32NE_K, R1, ne16(&o[2 * k..]), fast);
        }
        a.jump(EJA, 0, 0, drop);
    }
    a.here(fast);
    // The group's MAC as destination: ipmp0's receive path then takes the
    // frame as its own (PACKET_HOST).
    let g = spec.group_mac;
    a.i(insn(
        ST_W,
        FP,
        0,
        STACK_GROUP_MAC,
        i32::from_ne_bytes([g[0], g[1], g[2], g[3]]),
    ));
    a.i(insn(ST_H, FP, 0, STACK_GROUP_MAC + 4, ne16(&g[4..])));
    a.store_frame(AT_DST, FP, i32::from(STACK_GROUP_MAC), 6, drop);
    if map_fd >= 0 {
        let redirect = a.label();
        a.i(insn(ST_W, FP, 0, STACK_KEY, 0));
        a.count_frame(map_fd, STACK_KEY, redirect);
    }
    a.i(insn(MOV64_K, R1, 0, 0, tap_ifindex as i32));
    a.i(insn(MOV64_K, R2, 0, 0, BPF_F_INGRESS));
    a.i(insn(CALL, 0, 0, 0, FN_REDIRECT));
    a.i(insn(EXIT, 0, 0, 0, 0));
    a.here(drop);
    a.ret(TCX_DROP);
    a.finish()
}

#[cfg(test)]
mod tests;
