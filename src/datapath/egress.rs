//! The outbound fast path: a tcx egress program on the group interface
//! that sends the common frame (untagged unicast TCP or UDP over IPv4
//! without options and not a fragment, or over IPv6 with no extension
//! header) straight out of the member its flow's bucket names, with the
//! member's MAC as source: the decision [`super::plan::outbound`] makes, made
//! by the kernel in the sender's context, so the frame never crosses the
//! TAP into user space.
//!
//! The program hashes the flow exactly as [`super::frame::flow_hash`] and
//! [`super::frame::flow_hash6`] do (the same seed is built into it), then
//! reads the bucket in a [`table`] the daemon rewrites with every published
//! plan; a bucket with no member (ifindex 0), and every other frame, goes
//! on to the TAP and user space as before. Tested against the user-space
//! decision in the kernel (`BPF_PROG_TEST_RUN`).

use super::buckets::{Slot, NO_SLOT, NUM_BUCKETS};
use super::ebpf::*;
use super::frame::{
    ETH_P_IP, ETH_P_IPV6, FAST4_LEN, FAST6_LEN, FLOW4_SEED_ROT, FLOW6_MUL, FMIX_MUL, FMIX_SHIFT,
    FRAGMENT_BITS, HALF, IPPROTO_TCP, IPPROTO_UDP, L3_AT,
};
use super::plan::{Outbound, Plan};
use crate::sys::bpf::Insn;
use crate::wire::{ethernet, ipv4, ipv6};

/// Bytes of one bucket's entry in the table: the member's ifindex (u32,
/// 0: no member, user space decides), its slot (u32, the counters' key),
/// its MAC, padding to a power of two so the program finds an entry with
/// a shift.
pub const ENTRY_SIZE: usize = 16;
const ENTRY_SHIFT: i32 = ENTRY_SIZE.trailing_zeros() as i32;
const AT_IFINDEX: i16 = 0;
const AT_SLOT: i16 = 4;
const AT_MAC: usize = 8;
/// Bytes of the table: one value holding every bucket, swapped in whole
/// (a [`crate::sys::bpf::SnapshotMap`]), so a frame sees one table.
pub const TABLE_SIZE: usize = NUM_BUCKETS * ENTRY_SIZE;
/// Entries of the counters map: one per possible slot.
pub const COUNTER_SLOTS: u32 = NO_SLOT as u32;
/// Bytes of a counters entry: frames, bytes (u64 each).
pub const COUNTER_SIZE: usize = crate::sys::bpf::COUNTER_VALUE as usize;
/// The maps' names, shown by `bpftool map`.
pub const TABLE_NAME: &[u8] = b"ipmpd_eg_table";
pub const COUNTERS_NAME: &[u8] = b"ipmpd_eg_count";

/// The table for `plan`: for each bucket, the member's ifindex (from
/// `ifindex`), slot and MAC; all zero (every frame to user space) when
/// `on` is false or outbound frames follow the source binding (`--outbound
/// bound`, which the program does not know).
pub fn table(plan: &Plan, ifindex: impl Fn(Slot) -> Option<u32>, on: bool) -> Vec<u8> {
    let mut t = vec![0u8; TABLE_SIZE];
    if !on || plan.outbound != Outbound::Flow {
        return t;
    }
    for (b, &slot) in plan.buckets.owners().iter().enumerate() {
        let port = plan.ports.get(usize::from(slot)).and_then(Option::as_ref);
        let (Some(port), Some(index)) = (port, ifindex(slot)) else {
            continue;
        };
        let e = &mut t[b * ENTRY_SIZE..(b + 1) * ENTRY_SIZE];
        e[AT_IFINDEX as usize..4].copy_from_slice(&index.to_ne_bytes());
        e[AT_SLOT as usize..8].copy_from_slice(&u32::from(slot).to_ne_bytes());
        e[AT_MAC..AT_MAC + 6].copy_from_slice(&port.mac);
    }
    t
}

/// (frames, bytes) of a counters entry.
pub use crate::sys::bpf::frames_and_bytes as counters_of;

// Stack layout. Stack loads must be aligned to their size: the copy starts
// at 2 mod 8, so the IPv6 addresses (frame bytes 22 and 38) are 8-aligned
// and the IPv4 addresses and ports 4-aligned.
const STACK_FRAME: i16 = -78;
/// The table's key (0).
const STACK_TABLE_KEY: i16 = -4;
/// The counters' key (the slot).
const STACK_SLOT: i16 = -8;

const AT_ETHERTYPE: usize = ethernet::field::ETHERTYPE.start;
const AT_VER_IHL: usize = L3_AT + ipv4::field::VER_IHL;
const AT_FLG_OFF: usize = L3_AT + ipv4::field::FLG_OFF.start;
const AT_PROTOCOL: usize = L3_AT + ipv4::field::PROTOCOL;
const AT_SRC4: usize = L3_AT + ipv4::field::SRC_ADDR.start;
const AT_DST4: usize = L3_AT + ipv4::field::DST_ADDR.start;
const AT_PORTS4: usize = L3_AT + ipv4::MIN_HEADER_LEN;
const AT_NXT_HDR: usize = L3_AT + ipv6::field::NXT_HDR;
const AT_SRC6: usize = L3_AT + ipv6::field::SRC_ADDR.start;
const AT_PORTS6: usize = FAST6_LEN;
/// Bytes of an IPv6 frame the program reads: up to the ports.
const FAST6_PORTS_END: usize = AT_PORTS6 + 4;
/// IPv4, a header without options.
const VER_IHL_PLAIN: i32 = ipv4::VER_IHL_PLAIN as i32;
/// The version in the high nibble of an IPv6 header's first byte.
const IPV6_VERSION: i32 = ipv6::VERSION as i32;
const VERSION_SHIFT: i32 = super::frame::VERSION_SHIFT as i32;
/// The group bit of the destination MAC's first byte: multicast and
/// broadcast go through user space (the nominee).
const MAC_GROUP_BIT: i32 = 1;
const BUCKET_MASK: i32 = NUM_BUCKETS as i32 - 1;
const MAC_LEN: i32 = ethernet::ADDRESS_LEN as i32;

fn at(off: usize) -> i16 {
    STACK_FRAME + off as i16
}

/// dst = the big-endian `bits`-bit field at frame offset `off`.
fn load_be(a: &mut Ebpf, dst: u8, off: usize, bits: i32) {
    let code = match bits {
        64 => LDX_DW,
        32 => LDX_W,
        16 => LDX_H,
        _ => LDX_B,
    };
    a.i(insn(code, dst, FP, at(off), 0));
    if bits > 8 {
        a.i(insn(TO_BE, dst, 0, 0, bits));
    }
}

/// x = x.rotate_left(n), with `tmp` clobbered.
fn rotl(a: &mut Ebpf, x: u8, tmp: u8, n: u32) {
    let n = n % u64::BITS;
    if n == 0 {
        return;
    }
    a.i(insn(MOV64_X, tmp, x, 0, 0));
    a.i(insn(LSH64_K, x, 0, 0, n as i32));
    a.i(insn(RSH64_K, tmp, 0, 0, (u64::BITS - n) as i32));
    a.i(insn(OR64_X, x, tmp, 0, 0));
}

/// k = fmix64(k), with `tmp` clobbered.
fn fmix(a: &mut Ebpf, k: u8, tmp: u8) {
    for m in FMIX_MUL {
        a.i(insn(MOV64_X, tmp, k, 0, 0));
        a.i(insn(RSH64_K, tmp, 0, 0, FMIX_SHIFT as i32));
        a.i(insn(XOR64_X, k, tmp, 0, 0));
        a.imm64(tmp, m);
        a.i(insn(MUL64_X, k, tmp, 0, 0));
    }
    a.i(insn(MOV64_X, tmp, k, 0, 0));
    a.i(insn(RSH64_K, tmp, 0, 0, FMIX_SHIFT as i32));
    a.i(insn(XOR64_X, k, tmp, 0, 0));
}

/// x ^= v (a 64-bit constant), with `tmp` clobbered.
fn xor_imm(a: &mut Ebpf, x: u8, tmp: u8, v: u64) {
    a.imm64(tmp, v);
    a.i(insn(XOR64_X, x, tmp, 0, 0));
}

/// Jumps to `to` unless the byte in `reg` is TCP or UDP.
fn unless_l4(a: &mut Ebpf, reg: u8, to: usize) {
    let l4 = a.label();
    a.jump(J32EQ_K, reg, i32::from(IPPROTO_TCP), l4);
    a.jump(J32NE_K, reg, i32::from(IPPROTO_UDP), to);
    a.here(l4);
}

/// The group interface's tcx egress program: flow hash with `seed`, the
/// bucket's entry in `table_fd` (a [`crate::sys::bpf::SnapshotMap`] of a
/// [`TABLE_SIZE`] value), the member's MAC as source, counted in
/// `counters_fd` (by slot), redirected out of the member. Anything else:
/// [`TCX_NEXT`], to the TAP as before.
pub fn program(seed: u64, table_fd: i32, counters_fd: i32) -> Result<Vec<Insn>, TooLong> {
    let mut a = Ebpf::default();
    let pass = a.label();
    let v4 = a.label();
    let bucket = a.label();
    let redirect = a.label();
    a.untagged_frame(STACK_FRAME, FAST4_LEN, pass);
    a.i(insn(LDX_B, R1, FP, at(0), 0));
    a.i(insn(AND64_K, R1, 0, 0, MAC_GROUP_BIT));
    a.jump(EJNE_K, R1, 0, pass);
    a.i(insn(LDX_H, R1, FP, at(AT_ETHERTYPE), 0));
    a.jump(J32EQ_K, R1, ne16(&ETH_P_IP.to_be_bytes()), v4);
    a.jump(J32NE_K, R1, ne16(&ETH_P_IPV6.to_be_bytes()), pass);

    // IPv6: flow_hash6 into r7.
    a.load_frame(STACK_FRAME, FAST6_PORTS_END);
    a.jump(EJNE_K, R0, 0, pass);
    a.i(insn(LDX_B, R1, FP, at(L3_AT), 0));
    a.i(insn(RSH64_K, R1, 0, 0, VERSION_SHIFT));
    a.jump(J32NE_K, R1, IPV6_VERSION, pass);
    a.i(insn(LDX_B, R2, FP, at(AT_NXT_HDR), 0));
    unless_l4(&mut a, R2, pass);
    a.i(insn(MOV64_K, R7, 0, 0, 0));
    for (i, m) in FLOW6_MUL.into_iter().enumerate() {
        if i < 4 {
            load_be(&mut a, R1, AT_SRC6 + 8 * i, 64);
        } else {
            // proto << 32 | ports
            a.i(insn(MOV64_X, R1, R2, 0, 0));
            a.i(insn(LSH64_K, R1, 0, 0, 32));
            load_be(&mut a, R3, AT_PORTS6, 32);
            a.i(insn(OR64_X, R1, R3, 0, 0));
        }
        let r = super::frame::flow6_rot(i);
        xor_imm(&mut a, R1, R3, seed.rotate_left(r));
        a.imm64(R3, m);
        a.i(insn(MUL64_X, R1, R3, 0, 0));
        rotl(&mut a, R1, R3, HALF + r);
        a.i(insn(XOR64_X, R7, R1, 0, 0));
    }
    fmix(&mut a, R7, R3);
    a.jump(EJA, 0, 0, bucket);

    // IPv4: flow_hash into r7.
    a.here(v4);
    a.i(insn(LDX_B, R1, FP, at(AT_VER_IHL), 0));
    a.jump(J32NE_K, R1, VER_IHL_PLAIN, pass);
    load_be(&mut a, R1, AT_FLG_OFF, 16);
    a.i(insn(AND64_K, R1, 0, 0, i32::from(FRAGMENT_BITS)));
    a.jump(EJNE_K, R1, 0, pass);
    a.i(insn(LDX_B, R2, FP, at(AT_PROTOCOL), 0));
    unless_l4(&mut a, R2, pass);
    // a = (src << 32 | dst) ^ seed
    load_be(&mut a, R7, AT_SRC4, 32);
    a.i(insn(LSH64_K, R7, 0, 0, 32));
    load_be(&mut a, R1, AT_DST4, 32);
    a.i(insn(OR64_X, R7, R1, 0, 0));
    xor_imm(&mut a, R7, R3, seed);
    // b = (proto << 32 | ports) ^ seed.rotate_left(29)
    a.i(insn(MOV64_X, R8, R2, 0, 0));
    a.i(insn(LSH64_K, R8, 0, 0, 32));
    load_be(&mut a, R1, AT_PORTS4, 32);
    a.i(insn(OR64_X, R8, R1, 0, 0));
    xor_imm(&mut a, R8, R3, seed.rotate_left(FLOW4_SEED_ROT));
    fmix(&mut a, R8, R3);
    a.i(insn(XOR64_X, R7, R8, 0, 0));
    fmix(&mut a, R7, R3);

    // The bucket's entry: r7 = &table[hash & mask], in the table snapshot
    // the outer map holds now (it never changes once swapped in).
    a.here(bucket);
    a.i(insn(AND64_K, R7, 0, 0, BUCKET_MASK));
    a.i(insn(LSH64_K, R7, 0, 0, ENTRY_SHIFT));
    a.i(insn(ST_W, FP, 0, STACK_TABLE_KEY, 0));
    a.map_fd(R1, table_fd);
    a.i(insn(MOV64_X, R2, FP, 0, 0));
    a.i(insn(ADD64_K, R2, 0, 0, i32::from(STACK_TABLE_KEY)));
    a.i(insn(CALL, 0, 0, 0, FN_MAP_LOOKUP_ELEM));
    a.jump(EJEQ_K, R0, 0, pass);
    a.i(insn(MOV64_X, R1, R0, 0, 0));
    a.i(insn(MOV64_X, R2, FP, 0, 0));
    a.i(insn(ADD64_K, R2, 0, 0, i32::from(STACK_TABLE_KEY)));
    a.i(insn(CALL, 0, 0, 0, FN_MAP_LOOKUP_ELEM));
    a.jump(EJEQ_K, R0, 0, pass);
    a.i(insn(ADD64_X, R0, R7, 0, 0));
    a.i(insn(MOV64_X, R7, R0, 0, 0));
    // The member's ifindex, read once (r8 survives the calls below).
    a.i(insn(LDX_W, R8, R7, AT_IFINDEX, 0));
    a.jump(EJEQ_K, R8, 0, pass);
    // The member's MAC as source.
    a.store_frame(ethernet::field::SOURCE.start, R7, AT_MAC as i32, MAC_LEN, pass);
    // Counted by slot.
    a.i(insn(LDX_W, R1, R7, AT_SLOT, 0));
    a.i(insn(STX_W, FP, R1, STACK_SLOT, 0));
    a.count_frame(counters_fd, STACK_SLOT, redirect);
    a.i(insn(MOV64_X, R1, R8, 0, 0));
    a.i(insn(MOV64_K, R2, 0, 0, 0));
    a.i(insn(CALL, 0, 0, 0, FN_REDIRECT));
    a.i(insn(EXIT, 0, 0, 0, 0));
    a.here(pass);
    a.ret(TCX_NEXT);
    a.finish()
}

#[cfg(test)]
mod tests;
