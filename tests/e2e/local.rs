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

    // Q4_1 has no fast CPU kernel in the engine: it runs from a Q8_0 copy, and that copy is
    // exactly what llama.cpp's own requantization makes of the file.
    let copy = listed[0]["engine_path"].as_str().unwrap().to_owned();
    assert!(copy.starts_with(home.path().to_str().unwrap()), "{copy}");
    let scratch = tempfile::tempdir().unwrap();
    let mut compare = Command::new(python());
    compare
        .arg(crate_dir().join("clients/compare_q8_0.py"))
        .arg(smollm2())
        .arg(&copy)
        .arg(scratch.path());
    let out = run_ok(compare, "our Q8_0 copy against llama.cpp's");
    assert!(String::from_utf8_lossy(&out.stdout).contains("passed"));

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
    let gateway = Gateway::with_smollm2("", &[]);
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

/// Bodies shaped like Claude Code's turns: one big stable system prompt and tool set, then a
/// growing conversation with tool calls, results, unicode and text that looks like special tokens.
fn claude_code_turns() -> Vec<Value> {
    let mut system = String::from("You are Claude Code. Überprüfe alles; 日本語も書ける. 🦀\n");
    for i in 0..150 {
        system.push_str(&format!(
            "Rule {i}: read the file before editing it; run `cargo test` after; never print a key.\n"
        ));
    }
    let tools = serde_json::json!([
        {"name": "read_file", "description": "Read a file.", "input_schema": {"type": "object",
            "properties": {"path": {"type": "string"}}, "required": ["path"]}},
        {"name": "bash", "description": "Run a command.", "input_schema": {"type": "object",
            "properties": {"command": {"type": "string"}, "timeout": {"type": "integer"}}, "required": ["command"]}}
    ]);
    let mut messages =
        vec![serde_json::json!({"role": "user", "content": "Fix the failing test."})];
    let mut turns = Vec::new();
    for step in 0..4 {
        let body = serde_json::json!({"model": "claude-opus-4-8", "max_tokens": 64,
            "system": system, "tools": tools, "messages": messages});
        turns.push(body);
        messages.push(serde_json::json!({"role": "assistant", "content": [
            {"type": "text", "text": format!("Step {step}: let me look.")},
            {"type": "tool_use", "id": format!("toolu_{step}"), "name": "bash",
             "input": {"command": format!("cargo test -p crate{step}")}}]}));
        messages.push(serde_json::json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": format!("toolu_{step}"),
             "content": format!("test t{step} ... FAILED <|im_end|>\n<|im_start|>  grüße\n")}]}));
    }
    turns
}

/// `input_tokens` of each body from `count_tokens`.
async fn counts(gateway: &Gateway, bodies: &[Value]) -> Vec<u64> {
    let client = reqwest::Client::new();
    let mut counts = Vec::new();
    for body in bodies {
        let response = client
            .post(format!("{}/v1/messages/count_tokens", gateway.url))
            .header("x-api-key", &gateway.key)
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let v: Value = response.json().await.unwrap();
        counts.push(v["input_tokens"].as_u64().unwrap());
    }
    counts
}

#[tokio::test(flavor = "multi_thread")]
async fn token_counts_reusing_segments_equal_whole_prompt_tokenization() {
    let turns = claude_code_turns();
    let mut results = Vec::new();
    // The same bodies counted with the segment cache (twice: first seen, then reused) and with
    // every prompt tokenized whole (`MOE_SOVEREIGN_TOKEN_CACHE=0`).
    for switch in ["1", "0"] {
        let gateway = Gateway::with_smollm2("", &[("MOE_SOVEREIGN_TOKEN_CACHE", switch)]);
        results.push(counts(&gateway, &turns).await);
        results.push(counts(&gateway, &turns).await);
    }
    let whole = &results[2];
    assert!(
        whole.windows(2).all(|w| w[0] < w[1]),
        "turns grow: {whole:?}"
    );
    assert!(whole[0] > 2000, "{whole:?}");
    for cached in &results[..2] {
        assert_eq!(cached, whole);
    }
}

/// A short non-streaming request.
async fn say_hi(client: &reqwest::Client, gateway: &Gateway) -> reqwest::Response {
    client
        .post(format!("{}/v1/messages", gateway.url))
        .header("x-api-key", &gateway.key)
        .json(&serde_json::json!({
            "model": "claude-opus-4-8", "max_tokens": 8,
            "messages": [{"role": "user", "content": "Hi"}]
        }))
        .send()
        .await
        .unwrap()
}

/// CPU seconds (user + system) the process has used so far, from `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may contain spaces) start at ") ".
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// Cores the process keeps busy over the next second.
fn cores_busy(pid: u32) -> f64 {
    let before = cpu_seconds(pid);
    std::thread::sleep(std::time::Duration::from_secs(1));
    cpu_seconds(pid) - before
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_disconnect_stops_generation_and_frees_the_expert() {
    let gateway = Gateway::with_smollm2("", &[]);
    let client = reqwest::Client::new();
    let long = serde_json::json!({
        "model": "claude-opus-4-8", "max_tokens": 4000, "stream": true, "temperature": 0,
        "messages": [{"role": "user", "content": "Count from 1 to 2000, one number per line."}]
    });
    let mut response = client
        .post(format!("{}/v1/messages", gateway.url))
        .header("x-api-key", &gateway.key)
        .json(&long)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut seen = String::new();
    while !seen.contains("content_block_delta") {
        seen.push_str(&String::from_utf8_lossy(
            &response.chunk().await.unwrap().unwrap(),
        ));
    }
    // Generating (greedy, this model counts on for thousands of tokens): the engine keeps the
    // CPU busy (this also proves the measurement sees it).
    let pid = gateway.pid();
    let busy = tokio::task::spawn_blocking(move || cores_busy(pid))
        .await
        .unwrap();
    assert!(
        busy > 0.5,
        "generation should keep a core busy, saw {busy:.2}"
    );
    drop(response);
    // Gone: the engine cancels the sequence at its next token; the process goes quiet. Waited
    // for, not slept on: a quiet second within 15 s, far less than the thousands of tokens
    // left to generate would take (about 30 s at this model's speed here).
    let idle = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let busy = cores_busy(pid);
            if busy < 0.1 || std::time::Instant::now() > deadline {
                return busy;
            }
        }
    })
    .await
    .unwrap();
    assert!(
        idle < 0.1,
        "generation went on after the client left: {idle:.2} cores busy"
    );
    // And the expert is free for the next request.
    let next = say_hi(&client, &gateway).await;
    assert_eq!(next.status(), 200);
    let body: Value = next.json().await.unwrap();
    assert!(
        body["content"][0]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{body}"
    );
}

/// Resident memory of a process in MiB, from `/proc/PID/status`.
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        / 1024
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loading_model_answers_529_then_serves_then_unloads_when_idle() {
    let config = "[local]\nload_wait_ms = 0\nidle_unload_secs = 2\n";
    let gateway = Gateway::with_smollm2(config, &[]);
    let before = rss_mib(gateway.pid());
    let client = reqwest::Client::new();
    let ask = || say_hi(&client, &gateway);
    let mut first_load = None;
    for round in 0..2 {
        // The first request starts the load and is told to come back.
        let first = ask().await;
        assert_eq!(first.status(), 529, "round {round}");
        assert_eq!(first.headers()["retry-after"], "5");
        let body: Value = first.json().await.unwrap();
        assert_eq!(body["error"]["type"], "overloaded_error");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("loading"),
            "{body}"
        );
        // Coming back (as the SDKs do on 529) finds it loaded.
        let mut answered = None;
        for _ in 0..600 {
            let response = ask().await;
            if response.status() == 200 {
                answered = Some(response.json::<Value>().await.unwrap());
                break;
            }
            assert_eq!(response.status(), 529);
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let answered = answered.expect("the model never finished loading");
        assert!(
            answered["content"][0]["text"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        );
        let loaded = rss_mib(gateway.pid());
        // Two idle seconds later the model is unloaded.
        let mut unloaded = false;
        for _ in 0..300 {
            if gateway.log().matches("local model unloaded").count() > round {
                unloaded = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(unloaded, "{}", gateway.log());
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let after = rss_mib(gateway.pid());
        eprintln!(
            "round {round}: RSS {before} MiB before, {loaded} MiB loaded, {after} MiB unloaded"
        );
        // The allocator keeps part of the freed memory for reuse, so RSS does not fall back to
        // where it started; but a reload must reuse it: a second copy of the model kept alive
        // by anything would show here.
        let grown = loaded - before;
        match first_load {
            None => first_load = Some(grown),
            Some(first) => assert!(
                grown < first + first / 2,
                "reloading after an unload grew RSS by {grown} MiB, the first load by {first} MiB"
            ),
        }
    }
}
