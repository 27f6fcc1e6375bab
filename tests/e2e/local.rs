//! Local experts with the real SmolLM2-135M-Instruct GGUF: the registry refuses bad files
//! cleanly, and a fresh home plus one `models add` answers every profile in-process.

use std::process::Command;

use moe_sovereign_e2e::Gateway;
use moe_sovereign_e2e::gateway::binary;
use moe_sovereign_e2e::tools::{crate_dir, python, run_ok, smollm2, sse_text};
use serde_json::Value;

fn models(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(binary())
        .arg("models")
        .args(args)
        .env("MOE_SOVEREIGN_HOME", home)
        .output()
        .unwrap()
}

#[test]
fn models_add_refuses_truncated_and_foreign_files_in_one_line() {
    let home = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(smollm2()).unwrap();
    let truncated = home.path().join("truncated.gguf");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let zip = home.path().join("not-a-model.gguf");
    std::fs::write(&zip, b"PK\x03\x04 this is a zip").unwrap();
    for (file, reason) in [(&truncated, "truncated"), (&zip, "not a GGUF file")] {
        let out = models(home.path(), &["add", file.to_str().unwrap()]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(reason), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "not one line: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let out = models(home.path(), &["list", "--json"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
}

#[test]
fn one_models_add_serves_real_text_with_exact_token_counts() {
    let (home, key) = Gateway::home("", "moe_native");
    let out = models(
        home.path(),
        &["add", smollm2().to_str().unwrap(), "--name", "smollm2"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Value =
        serde_json::from_slice(&models(home.path(), &["list", "--json"]).stdout).unwrap();
    assert_eq!(listed[0]["name"], "smollm2");
    assert_eq!(listed[0]["architecture"], "llama");
    assert_eq!(listed[0]["quantization"], "Q4_1");

    let gateway = Gateway::start_in(home, key, &[]);
    let mut command = Command::new(python());
    command
        .arg(crate_dir().join("clients/python_local.py"))
        .env("MOE_URL", &gateway.url)
        .env("MOE_KEY", &gateway.key);
    let out = run_ok(command, "python SDK against the local model");
    assert!(String::from_utf8_lossy(&out.stdout).contains("passed"));
}

#[tokio::test(flavor = "multi_thread")]
async fn eight_concurrent_streams_all_end_cleanly() {
    let (home, key) = Gateway::home("", "moe_native");
    let out = models(home.path(), &["add", smollm2().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gateway = Gateway::start_in(home, key, &[]);
    let client = reqwest::Client::new();
    let requests = (0..8).map(|i| {
        let request = client
            .post(format!("{}/v1/messages", gateway.url))
            .header("x-api-key", &gateway.key)
            .json(&serde_json::json!({
                "model": "claude-opus-4-8", "max_tokens": 12, "stream": true,
                "messages": [{"role": "user", "content": format!("Count to {}.", i + 3)}]
            }));
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.text().await.unwrap()
        }
    });
    for body in futures::future::join_all(requests).await {
        let text = sse_text(&body);
        assert!(!text.is_empty(), "{body}");
        assert!(!body.contains("event: error"), "{body}");
        assert!(
            body.trim_end()
                .ends_with(r#"data: {"type":"message_stop"}"#),
            "{body}"
        );
    }
}
