#![no_main]
//! `openai_chunk`: see `moe_sovereign_fuzz_harness::openai_chunk`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| moe_sovereign_fuzz_harness::openai_chunk(data));
