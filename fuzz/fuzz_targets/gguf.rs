#![no_main]
//! `gguf`: see `moe_sovereign_fuzz_harness::gguf`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| moe_sovereign_fuzz_harness::gguf(data));
