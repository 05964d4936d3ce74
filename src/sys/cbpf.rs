//! Classic BPF (socket filter) opcodes and ancillary offsets, from
//! linux/filter.h and linux/bpf_common.h: one table for every filter the
//! daemon builds (the probe socket's, the members' fast-path exclusion).

/// BPF_LD | BPF_W | BPF_ABS: A = 32-bit word at k.
pub const LD_W_ABS: u16 = 0x20;
/// BPF_LD | BPF_H | BPF_ABS: A = 16-bit half word at k.
pub const LD_H_ABS: u16 = 0x28;
/// BPF_LD | BPF_B | BPF_ABS: A = byte at k.
pub const LD_B_ABS: u16 = 0x30;
/// BPF_LD | BPF_B | BPF_IND: A = byte at X + k.
pub const LD_B_IND: u16 = 0x50;
/// BPF_LD | BPF_W | BPF_LEN: A = the frame's length.
pub const LD_W_LEN: u16 = 0x80;
/// BPF_LDX | BPF_B | BPF_MSH: X = 4 * (byte at k & 0xf), an IPv4 header length.
pub const LDX_B_MSH: u16 = 0xb1;
/// BPF_JMP | BPF_JA: jump k forward.
pub const JA: u16 = 0x05;
/// BPF_JMP | BPF_JEQ | BPF_K.
pub const JEQ_K: u16 = 0x15;
/// BPF_JMP | BPF_JGE | BPF_K.
pub const JGE_K: u16 = 0x35;
/// BPF_JMP | BPF_JSET | BPF_K.
pub const JSET_K: u16 = 0x45;
/// BPF_RET | BPF_K: keep k bytes of the frame (0: drop it).
pub const RET_K: u16 = 0x06;
/// SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT: whether the frame had a VLAN tag.
pub const AD_VLAN_TAG_PRESENT: u32 = (-0x1000i32 + 48) as u32;
