//! The data plane: pure per-frame functions (classify, hash, pick, rewrite)
//! and the thin I/O shell that runs them between the TAP and the members.

pub mod arp;
pub mod batch;
pub mod buckets;
pub mod counters;
pub mod ebpf;
pub mod egress;
pub mod fastpath;
pub mod frame;
pub mod ndp;
pub mod plan;
pub mod probegate;
pub mod shell;
pub mod vnet;
