#![no_main]
//! `sse`: see `moe_sovereign_fuzz_harness::sse`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| moe_sovereign_fuzz_harness::sse(data));
