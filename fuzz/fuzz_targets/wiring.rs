#![no_main]
//! `wiring`: see `moe_sovereign_fuzz_harness::wiring`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| moe_sovereign_fuzz_harness::wiring(data));
