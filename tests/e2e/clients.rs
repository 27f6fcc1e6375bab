//! The official clients against the gateway: Python SDK, TypeScript SDK, Claude Code CLI.

use std::process::Command;

use moe_sovereign_e2e::tools::{claude, crate_dir, node_dir, python, run_ok};
use moe_sovereign_e2e::{FakeUpstream, Flavor, Gateway};

use crate::stack;

fn python_sdk(flavor: Flavor, name: &str) {
    let (_upstream, gateway) = stack(flavor, "");
    let mut command = Command::new(python());
    command
        .arg(crate_dir().join("clients/python_sdk.py"))
        .env("MOE_URL", &gateway.url)
        .env("MOE_KEY", &gateway.key)
        .env("FLAVOR", name);
    let out = run_ok(command, "python SDK client");
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"passed\": true"));
}

#[test]
fn python_sdk_through_openai_expert() {
    python_sdk(Flavor::OpenAi, "openai");
}

#[test]
fn python_sdk_through_anthropic_expert() {
    python_sdk(Flavor::Anthropic, "anthropic");
}

fn ts_sdk(flavor: Flavor, name: &str) {
    let (_upstream, gateway) = stack(flavor, "");
    let mut command = Command::new("node");
    command
        .arg(crate_dir().join("clients/ts_sdk.mjs"))
        .env("MOE_URL", &gateway.url)
        .env("MOE_KEY", &gateway.key)
        .env("MOE_NODE_DIR", node_dir())
        .env("FLAVOR", name);
    let out = run_ok(command, "TypeScript SDK client");
    assert!(String::from_utf8_lossy(&out.stdout).contains("{\"passed\":true}"));
}

#[test]
fn ts_sdk_through_openai_expert() {
    ts_sdk(Flavor::OpenAi, "openai");
}

#[test]
fn ts_sdk_through_anthropic_expert() {
    ts_sdk(Flavor::Anthropic, "anthropic");
}

/// `claude -p` in a scratch config dir, with nothing inherited but PATH.
pub fn claude_code(gateway: &Gateway, cwd: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let home = tempfile::tempdir().unwrap();
    let mut command = Command::new(claude());
    command
        .args(args)
        .args(["--output-format", "json"])
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", home.path())
        .env("CLAUDE_CONFIG_DIR", home.path().join(".claude"))
        .env("ANTHROPIC_BASE_URL", &gateway.url)
        .env("ANTHROPIC_API_KEY", &gateway.key)
        .env("DISABLE_TELEMETRY", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK", "1");
    let out = run_ok(command, "claude -p");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "claude printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// `claude -p` asked to read a file through its Read tool (the fake upstreams call it): the
/// tool's result must come back in the answer.
pub fn claude_code_reads_a_file(gateway: &Gateway) {
    let work = tempfile::tempdir().unwrap();
    let secret = work.path().join("secret.txt");
    std::fs::write(&secret, "the secret word is banana\n").unwrap();
    let prompt = format!(
        "Please read the file {} and tell me the secret word",
        secret.display()
    );
    let result = claude_code(
        gateway,
        work.path(),
        &["-p", &prompt, "--allowedTools", "Read"],
    );
    assert_eq!(result["is_error"], false, "{result}");
    let text = result["result"].as_str().unwrap();
    assert!(
        text.starts_with("The file says:") && text.contains("the secret word is banana"),
        "the Read tool result did not come back through the gateway: {result}\n{}",
        gateway.log()
    );
}

fn billing_block_never_reached(upstream: &FakeUpstream) {
    for request in upstream.requests() {
        let body = request.body.to_string();
        assert!(
            !body.contains("x-anthropic-billing-header"),
            "billing block reached the upstream: {}",
            &body[..body.len().min(300)]
        );
    }
}

fn claude_code_round_trips(flavor: Flavor) {
    let (upstream, gateway) = stack(flavor, "");
    let work = tempfile::tempdir().unwrap();

    let result = claude_code(&gateway, work.path(), &["-p", "say pong"]);
    assert_eq!(result["is_error"], false, "{result}");
    let text = result["result"].as_str().unwrap();
    assert!(
        text.starts_with("pong: ") && text.contains("say pong"),
        "{result}"
    );

    claude_code_reads_a_file(&gateway);
    // Three model calls: pong, the tool call, the answer after the tool result.
    let calls = upstream
        .requests()
        .iter()
        .filter(|r| r.path != "/v1/messages/count_tokens")
        .count();
    assert_eq!(
        calls,
        3,
        "{:#?}",
        upstream
            .requests()
            .iter()
            .map(|r| &r.path)
            .collect::<Vec<_>>()
    );
    billing_block_never_reached(&upstream);
}

#[test]
fn claude_code_through_openai_expert() {
    claude_code_round_trips(Flavor::OpenAi);
}

#[test]
fn claude_code_through_anthropic_expert() {
    claude_code_round_trips(Flavor::Anthropic);
}
