#![no_main]
// Body in the library (ipmpd::fuzzing), shared with tests/fuzz_bounded.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ipmpd::fuzzing::ndp_rewrite(data));
