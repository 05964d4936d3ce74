//! The fuzz targets of `fuzz/` as bounded randomized tests on stable: every
//! target body (ipmpd::fuzzing) gets random inputs from a seeded generator
//! and structured mutations of valid inputs, so the deep paths are reached
//! and not only the early rejections. A failure prints the seed and input.
//!
//! `IPMPD_FUZZ_SEED=N` replays another seed; `IPMPD_FUZZ_ROUNDS=N` scales
//! the count. `cargo test --test fuzz_bounded -- --ignored write_seed_corpus`
//! writes the valid inputs into fuzz/corpus/TARGET/ for cargo-fuzz.

use ipmpd::fuzzing::{seeds, TARGETS};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Default seed: fixed, so a failure repeats on every machine.
const DEFAULT_SEED: u64 = 0x1d2c_3b4a_5968_7786;
/// Random inputs per target, and mutations per seed input.
const RANDOM_INPUTS: usize = 3_000;
const MUTATIONS_PER_SEED: usize = 1_500;
/// Longest random input: past a jumbo frame's worth nothing new is parsed.
const RANDOM_MAX_LEN: usize = 600;
/// Mutations stacked on one seed input at most.
const MAX_STACKED_MUTATIONS: usize = 4;

use ipmpd::fuzzing::SplitMix64 as Rng;

/// Values that sit on boundaries of lengths, flags and counts.
const INTERESTING: [u8; 8] = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, 0x40, 0x10];

/// One structured mutation, as libFuzzer would make: flip a bit, set a byte
/// to a boundary value, overwrite a 16-bit field, truncate, extend, insert,
/// remove or duplicate a run of bytes.
fn mutate(rng: &mut Rng, v: &mut Vec<u8>) {
    let len = v.len();
    match rng.below(9) {
        0 if len > 0 => {
            let i = rng.below(len);
            v[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            v[i] = INTERESTING[rng.below(INTERESTING.len())];
        }
        2 if len > 1 => {
            let i = rng.below(len - 1);
            let w: u16 = match rng.below(4) {
                0 => 0,
                1 => u16::MAX,
                2 => (len as u16).wrapping_add(rng.below(3) as u16).wrapping_sub(1),
                _ => rng.next() as u16,
            };
            v[i..i + 2].copy_from_slice(&w.to_be_bytes());
        }
        3 => v.truncate(rng.below(len + 1)),
        4 => {
            let n = rng.below(64);
            let extra = rng.bytes(n);
            v.extend_from_slice(&extra);
        }
        5 => {
            let i = rng.below(len + 1);
            let n = 1 + rng.below(8);
            let extra = rng.bytes(n);
            v.splice(i..i, extra);
        }
        6 if len > 0 => {
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(8));
            v.drain(i..i + n);
        }
        7 if len > 0 => {
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(16));
            let run = v[i..i + n].to_vec();
            let at = rng.below(len + 1);
            v.splice(at..at, run);
        }
        _ if len > 0 => {
            let i = rng.below(len);
            v[i] = rng.next() as u8;
        }
        _ => v.push(rng.next() as u8),
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Runs one target on every input of the round; the first failure names
/// the target, the seed and the input in hex.
fn run_target(name: &str, body: fn(&[u8]), seed: u64, scale: u64) -> usize {
    let mut rng = Rng(seed ^ name.bytes().fold(0u64, |h, b| h.rotate_left(7) ^ u64::from(b)));
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    let base = seeds(name);
    assert!(!base.is_empty(), "{name}: no seed inputs");
    inputs.extend(base.iter().cloned());
    for _ in 0..RANDOM_INPUTS * scale as usize {
        let n = rng.below(RANDOM_MAX_LEN);
        inputs.push(rng.bytes(n));
    }
    for s in &base {
        for _ in 0..MUTATIONS_PER_SEED * scale as usize {
            let mut v = s.clone();
            for _ in 0..1 + rng.below(MAX_STACKED_MUTATIONS) {
                mutate(&mut rng, &mut v);
            }
            inputs.push(v);
        }
    }
    for input in &inputs {
        let r = catch_unwind(AssertUnwindSafe(|| body(input)));
        if r.is_err() {
            let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
            panic!("fuzz target {name} failed (IPMPD_FUZZ_SEED={seed}) on input {hex}");
        }
    }
    inputs.len()
}

#[test]
fn every_target_survives_random_and_mutated_inputs() {
    let seed = env_u64("IPMPD_FUZZ_SEED", DEFAULT_SEED);
    let scale = env_u64("IPMPD_FUZZ_ROUNDS", 1).max(1);
    let mut total = 0;
    for (name, body) in TARGETS {
        total += run_target(name, *body, seed, scale);
    }
    eprintln!(
        "fuzz_bounded: {total} inputs over {} targets, seed {seed}",
        TARGETS.len()
    );
}

#[test]
fn every_fuzz_target_has_a_libfuzzer_entry_and_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    for (name, _) in TARGETS {
        let src = std::fs::read_to_string(dir.join(format!("{name}.rs")))
            .unwrap_or_else(|e| panic!("fuzz/fuzz_targets/{name}.rs: {e}"));
        assert!(src.contains(&format!("ipmpd::fuzzing::{name}(")), "{name}");
        assert!(!seeds(name).is_empty(), "{name}: no seeds");
    }
}

/// The seed inputs of every target become its starting corpus for cargo-fuzz.
#[test]
#[ignore = "writes fuzz/corpus; run by scripts/fuzz.sh"]
fn write_seed_corpus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (name, _) in TARGETS {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, s) in seeds(name).iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:03}")), s).unwrap();
        }
    }
}
