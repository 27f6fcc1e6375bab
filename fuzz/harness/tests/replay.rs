//! Every seed (`fuzz/corpus/<target>/`) and every crash found so far
//! (`fuzz/regressions/<target>/`) through the fuzz targets' bodies, as a plain test: no fuzz
//! build, no libFuzzer, the release profile like every other test.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use moe_sovereign_fuzz_harness::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_owned)
        .unwrap_or_default()
}

/// The files of `fuzz/<kind>/<target>/`, sorted; none when the folder does not exist.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every input of `kind` through its target; the inputs that panicked, with the message.
fn replay(kind: &str) -> (usize, Vec<String>) {
    let mut count = 0;
    let mut failures = Vec::new();
    for (name, target) in TARGETS {
        for path in inputs(kind, name) {
            count += 1;
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| target(&bytes))) {
                let message = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)");
                failures.push(format!("{}: {message}", path.display()));
            }
        }
    }
    (count, failures)
}

/// Folders under `fuzz/<kind>/` that name no target (a typo would silently replay nothing).
fn unknown_folders(kind: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind)) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !TARGETS.iter().any(|(target, _)| target == name))
        .collect()
}

#[test]
fn every_seed_passes_every_target() {
    for (name, _) in TARGETS {
        assert!(
            !inputs("corpus", name).is_empty(),
            "fuzz/corpus/{name}/ has no seeds"
        );
    }
    assert_eq!(unknown_folders("corpus"), Vec::<String>::new());
    let (count, failures) = replay("corpus");
    assert!(count > 0);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_crash_found_so_far_stays_fixed() {
    assert_eq!(unknown_folders("regressions"), Vec::<String>::new());
    let (_, failures) = replay("regressions");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The fuzz target reads GGUF bytes from memory; users' models are read from disk. Both ways
/// must agree on every seed and regression.
#[test]
fn gguf_files_read_the_same_from_disk_and_from_memory() {
    for kind in ["corpus", "regressions"] {
        for path in inputs(kind, "gguf") {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                moe_sovereign_gguf::inspect(&path),
                moe_sovereign_gguf::inspect_bytes(&bytes),
                "{}",
                path.display()
            );
        }
    }
}

/// The request seeds captured from Claude Code reach the accepting path (a seed the gateway
/// refuses would leave the fuzzer to find every accepted shape by itself).
#[test]
fn claude_code_seeds_are_accepted() {
    use moe_sovereign_gateway::normalize;
    let seeds: Vec<PathBuf> = inputs("corpus", "request")
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("claude-code-"))
        .collect();
    assert!(seeds.len() >= 3);
    for path in seeds {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let parsed = normalize::parse(&bytes);
        let accepted = if path.to_string_lossy().contains("count-tokens") {
            parsed.and_then(normalize::for_count)
        } else {
            parsed.and_then(normalize::for_messages)
        };
        assert!(accepted.is_ok(), "{}: {accepted:?}", path.display());
    }
}
