#![no_main]
//! `request`: see `moe_sovereign_fuzz_harness::request`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| moe_sovereign_fuzz_harness::request(data));
