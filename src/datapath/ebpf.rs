//! A small eBPF assembler for the two kernel fast paths (inbound:
//! [`super::fastpath`], outbound: [`super::egress`]): the opcodes, helper
//! numbers and `struct __sk_buff` offsets they use, and forward labels
//! resolved at the end. Programs are built at run time because they embed
//! values only the running daemon knows (MACs, addresses, map descriptors,
//! the flow-hash seed).

use crate::sys::bpf::Insn;

// Opcodes (linux/bpf.h, linux/bpf_common.h).
pub const MOV64_X: u8 = 0xbf;
pub const MOV64_K: u8 = 0xb7;
pub const ADD64_K: u8 = 0x07;
pub const ADD64_X: u8 = 0x0f;
pub const MUL64_X: u8 = 0x2f;
pub const OR64_X: u8 = 0x4f;
pub const AND64_K: u8 = 0x57;
pub const LSH64_K: u8 = 0x67;
pub const RSH64_K: u8 = 0x77;
pub const XOR64_X: u8 = 0xaf;
/// Byte swap to big-endian (BPF_ALU | BPF_END | BPF_TO_BE): on this
/// little-endian host, network-order loads become numbers.
pub const TO_BE: u8 = 0xdc;
pub const LDX_DW: u8 = 0x79;
pub const LDX_W: u8 = 0x61;
pub const LDX_H: u8 = 0x69;
pub const LDX_B: u8 = 0x71;
pub const STX_W: u8 = 0x63;
pub const ST_W: u8 = 0x62;
pub const ST_H: u8 = 0x6a;
pub const LD_IMM64: u8 = 0x18;
pub const ATOMIC_DW: u8 = 0xdb;
pub const EJA: u8 = 0x05;
pub const EJEQ_K: u8 = 0x15;
pub const EJNE_K: u8 = 0x55;
/// 32-bit compares (BPF_JMP32): the loaded halfwords against constants.
pub const J32EQ_K: u8 = 0x16;
pub const J32NE_K: u8 = 0x56;
pub const CALL: u8 = 0x85;
pub const EXIT: u8 = 0x95;
/// The atomic operation's imm: fetch-less add.
pub const ATOMIC_ADD: i32 = 0x00;
/// src_reg of an ld_imm64 that names a map by file descriptor.
pub const PSEUDO_MAP_FD: u8 = 1;

// Helpers (enum bpf_func_id).
pub const FN_MAP_LOOKUP_ELEM: i32 = 1;
pub const FN_SKB_STORE_BYTES: i32 = 9;
pub const FN_REDIRECT: i32 = 23;
pub const FN_SKB_LOAD_BYTES: i32 = 26;

// tcx verdicts (enum tcx_action_base).
/// Not ours: the next program, or the kernel's usual path.
pub const TCX_NEXT: i32 = -1;
pub use crate::sys::bpf::{TCX_DROP, TCX_REDIRECT};

// struct __sk_buff offsets.
pub const SKB_LEN: i16 = 0;
pub const SKB_VLAN_PRESENT: i16 = 20;

// Registers.
pub const R0: u8 = 0;
pub const R1: u8 = 1;
pub const R2: u8 = 2;
pub const R3: u8 = 3;
pub const R4: u8 = 4;
pub const R5: u8 = 5;
/// The context (the skb), kept across helper calls.
pub const R6: u8 = 6;
/// Callee-saved, kept across helper calls.
pub const R7: u8 = 7;
pub const R8: u8 = 8;
pub const FP: u8 = 10;

pub const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// Two bytes as the native-endian halfword a 16-bit load of them gives.
pub fn ne16(b: &[u8]) -> i32 {
    i32::from(u16::from_ne_bytes([b[0], b[1]]))
}

/// A program too long for its jumps (more member MACs than a jump spans).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("fast-path program too long")]
pub struct TooLong;

/// An eBPF sequence whose jump targets are labels until [`Ebpf::finish`].
#[derive(Default)]
pub struct Ebpf {
    code: Vec<(Insn, Option<usize>)>,
    labels: Vec<Option<usize>>,
}

impl Ebpf {
    pub fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    pub fn here(&mut self, l: usize) {
        self.labels[l] = Some(self.code.len());
    }
    pub fn i(&mut self, i: Insn) {
        self.code.push((i, None));
    }
    pub fn jump(&mut self, code: u8, dst: u8, imm: i32, to: usize) {
        self.code.push((insn(code, dst, 0, 0, imm), Some(to)));
    }
    /// dst = a 64-bit constant (ld_imm64 takes two slots).
    pub fn imm64(&mut self, dst: u8, v: u64) {
        self.i(insn(LD_IMM64, dst, 0, 0, v as u32 as i32));
        self.i(insn(0, 0, 0, 0, (v >> 32) as u32 as i32));
    }
    /// dst = the map of descriptor `fd`, for a helper call.
    pub fn map_fd(&mut self, dst: u8, fd: i32) {
        self.i(insn(LD_IMM64, dst, PSEUDO_MAP_FD, 0, fd));
        self.i(insn(0, 0, 0, 0, 0));
    }
    /// Every program's start: the context kept in r6, and the frame's
    /// first `len` bytes copied to fp + `at`; a frame whose VLAN tag the
    /// NIC took off, or one shorter than `len`, goes to `fail`.
    pub fn untagged_frame(&mut self, at: i16, len: usize, fail: usize) {
        self.i(insn(MOV64_X, R6, R1, 0, 0));
        self.i(insn(LDX_W, R0, R6, SKB_VLAN_PRESENT, 0));
        self.jump(EJNE_K, R0, 0, fail);
        // Fails (negative) when the frame is shorter.
        self.load_frame(at, len);
        self.jump(EJNE_K, R0, 0, fail);
    }

    /// Returns `verdict`.
    pub fn ret(&mut self, verdict: i32) {
        self.i(insn(MOV64_K, R0, 0, 0, verdict));
        self.i(insn(EXIT, 0, 0, 0, 0));
    }

    /// r0 = bpf_skb_load_bytes(skb in r6, 0, fp + `at`, len).
    pub fn load_frame(&mut self, at: i16, len: usize) {
        self.i(insn(MOV64_X, R1, R6, 0, 0));
        self.i(insn(MOV64_K, R2, 0, 0, 0));
        self.i(insn(MOV64_X, R3, FP, 0, 0));
        self.i(insn(ADD64_K, R3, 0, 0, i32::from(at)));
        self.i(insn(MOV64_K, R4, 0, 0, len as i32));
        self.i(insn(CALL, 0, 0, 0, FN_SKB_LOAD_BYTES));
    }
    /// r0 = bpf_skb_store_bytes(skb in r6, `to`, `src` + `off`, `len`, 0);
    /// goes to `fail` unless it stored.
    pub fn store_frame(&mut self, to: usize, src: u8, off: i32, len: i32, fail: usize) {
        self.i(insn(MOV64_X, R1, R6, 0, 0));
        self.i(insn(MOV64_K, R2, 0, 0, to as i32));
        self.i(insn(MOV64_X, R3, src, 0, 0));
        self.i(insn(ADD64_K, R3, 0, 0, off));
        self.i(insn(MOV64_K, R4, 0, 0, len));
        self.i(insn(MOV64_K, R5, 0, 0, 0));
        self.i(insn(CALL, 0, 0, 0, FN_SKB_STORE_BYTES));
        self.jump(EJNE_K, R0, 0, fail);
    }
    /// Counts the frame (one, and the skb's length in r6's context) in the
    /// (frames, bytes) entry of `map_fd` whose key is on the stack at `key`;
    /// goes on at `done` either way. Clobbers r0-r5.
    pub fn count_frame(&mut self, map_fd: i32, key: i16, done: usize) {
        self.map_fd(R1, map_fd);
        self.i(insn(MOV64_X, R2, FP, 0, 0));
        self.i(insn(ADD64_K, R2, 0, 0, i32::from(key)));
        self.i(insn(CALL, 0, 0, 0, FN_MAP_LOOKUP_ELEM));
        self.jump(EJEQ_K, R0, 0, done);
        self.i(insn(MOV64_K, R1, 0, 0, 1));
        self.i(insn(ATOMIC_DW, R0, R1, 0, ATOMIC_ADD));
        self.i(insn(LDX_W, R1, R6, SKB_LEN, 0));
        self.i(insn(ATOMIC_DW, R0, R1, 8, ATOMIC_ADD));
        self.here(done);
    }

    pub fn finish(self) -> Result<Vec<Insn>, TooLong> {
        self.code
            .iter()
            .enumerate()
            .map(|(at, &(mut i, to))| {
                if let Some(l) = to {
                    let target = self.labels[l].ok_or(TooLong)? as i64;
                    i.off = i16::try_from(target - at as i64 - 1).map_err(|_| TooLong)?;
                }
                Ok(i)
            })
            .collect()
    }
}
