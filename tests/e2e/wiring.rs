//! Wiring Claude through the built binary: `wire`/`unwire` on fixture homes shaped like each
//! platform, `credential`, the watcher inside `serve`, `doctor`, the setup script, and the real
//! Claude Code CLI answering through `wire claude-code` alone.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use moe_sovereign_e2e::gateway::binary;
use moe_sovereign_e2e::tools::{claude, crate_dir, run_ok, succeeded};
use moe_sovereign_e2e::{Flavor, Gateway};
use serde_json::{Value, json};

use crate::stack;

/// A settings file full of things a careless merge breaks.
const HOSTILE: &str = "{\n  \"permissions\": {\"allow\": [\"Read(~/**)\"], \"deny\": []},\n  \"note\": \"C:\\\\Users\\\\me \\\"quoted\\\" $HOME `tick` \\u00e9 \u{1F600}\",\n  \"nothing\": null,\n  \"big\": 123456789012345678901234567890,\n  \"deep\": [[[[[[[[{\"a\": [[[[null]]]]}]]]]]]]],\n  \"env\": {\"MY_TOOL_HOME\": \"/opt/x\"}\n}\n";

/// The moe-sovereign CLI with `home` as its home and `user` as the user's home (Claude's files).
fn moe(home: &Path, user: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(binary())
        .args(args)
        .env("MOE_SOVEREIGN_HOME", home)
        .env("HOME", user)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("CLAUDE_CONFIG_DIR")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn json_at(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Waits up to 20 s for `done`; on time-out, fails showing `context`.
fn eventually(what: &str, mut done: impl FnMut() -> bool, context: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for: {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The highest watcher pass number on log lines containing `what` (`pass=N`).
fn last_pass(log: &str, what: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains(what))
        .filter_map(|l| {
            l.split("pass=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .max()
        .unwrap_or(0)
}

/// Waits for the watcher to finish a check that started after now (forced by touching
/// wiring.json): whatever it would do about the files as they are now, it has done.
fn settled(gateway: &Gateway) {
    let started = last_pass(&gateway.log(), "wiring check started");
    let state = gateway.home.path().join("wiring.json");
    // Same bytes, replaced whole (a reader never sees it half written).
    let copy = state.with_extension("touch");
    std::fs::copy(&state, &copy).unwrap();
    std::fs::rename(&copy, &state).unwrap();
    eventually(
        "the watcher checks again",
        || last_pass(&gateway.log(), "wiring checked") > started,
        || gateway.log(),
    );
}

#[test]
fn claude_code_answers_through_wire_claude_code_alone() {
    let (upstream, gateway) = stack(Flavor::OpenAi, "");
    let user = tempfile::tempdir().unwrap();
    let settings = user.path().join(".claude/settings.json");
    write(&settings, HOSTILE);

    let out = succeeded(
        moe(
            gateway.home.path(),
            user.path(),
            &["wire", "claude-code", "--url", &gateway.url],
            &[],
        ),
        "wire claude-code",
    );
    assert!(!text(&out).contains(&gateway.key), "wire printed the key");
    let wired = json_at(&settings);
    assert_eq!(wired["env"]["ANTHROPIC_BASE_URL"], gateway.url.as_str());
    assert_eq!(wired["env"]["MY_TOOL_HOME"], "/opt/x");
    assert_eq!(mode(&settings), 0o600);
    let on_disk = std::fs::read_to_string(&settings).unwrap();
    assert!(
        !on_disk.contains(&gateway.key),
        "the key is not in Claude Code's settings"
    );
    assert!(on_disk.contains("123456789012345678901234567890"));

    // The real CLI with no ANTHROPIC_* variable: URL from settings, key from the helper.
    let work = tempfile::tempdir().unwrap();
    let mut command = Command::new(claude());
    command
        .args(["-p", "say pong", "--output-format", "json"])
        .current_dir(work.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", user.path())
        .env("DISABLE_TELEMETRY", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK", "1");
    // The helper reads the key from the Secret Service of this test session.
    if let Some(bus) = std::env::var_os("DBUS_SESSION_BUS_ADDRESS") {
        command.env("DBUS_SESSION_BUS_ADDRESS", bus);
    }
    let out = run_ok(command, "claude -p (wired)");
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["is_error"], false, "{result}");
    assert!(
        result["result"].as_str().unwrap().starts_with("pong: "),
        "{result}"
    );
    assert!(
        upstream
            .requests()
            .iter()
            .any(|r| r.path == "/v1/chat/completions"),
        "the answer did not come through the gateway"
    );

    succeeded(
        moe(
            gateway.home.path(),
            user.path(),
            &["unwire", "claude-code"],
            &[],
        ),
        "unwire claude-code",
    );
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), HOSTILE);
}

/// Claude Desktop's folders in a fixture home for `platform`, and the env that points there.
fn desktop_fixture(user: &Path, platform: &str) -> (PathBuf, Vec<PathBuf>, Vec<(String, String)>) {
    let s = |p: &Path| p.to_string_lossy().into_owned();
    match platform {
        "macos" => {
            let base = user.join("Library/Application Support");
            (base.join("Claude"), vec![base.join("Claude-3p")], vec![])
        }
        "linux" => {
            let base = user.join(".config");
            (base.join("Claude"), vec![base.join("Claude-3p")], vec![])
        }
        "windows" => {
            let roaming = user.join("AppData/Roaming");
            let local = user.join("AppData/Local");
            let msix = local.join("Packages/Claude_pzs8sxrjxfjjc/LocalCache/Roaming");
            std::fs::create_dir_all(&msix).unwrap();
            (
                roaming.join("Claude"),
                vec![local.join("Claude-3p"), msix.join("Claude-3p")],
                vec![
                    ("APPDATA".into(), s(&roaming)),
                    ("LOCALAPPDATA".into(), s(&local)),
                    ("USERPROFILE".into(), s(user)),
                ],
            )
        }
        "wsl" => {
            let windows = user.join("mnt/c/Users/Me");
            (
                windows.join("AppData/Roaming/Claude"),
                vec![windows.join("AppData/Local/Claude-3p")],
                vec![("USERPROFILE".into(), s(&windows))],
            )
        }
        _ => unreachable!(),
    }
}

#[test]
fn claude_desktop_round_trip_on_every_layout() {
    let (home, key) = Gateway::home("", "moe_native");
    for platform in ["macos", "linux", "windows", "wsl"] {
        let user = tempfile::tempdir().unwrap();
        let (normal, third_party, env) = desktop_fixture(user.path(), platform);
        let mut env: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        env.push(("MOE_SOVEREIGN_PLATFORM", platform));
        let seed = normal.join("claude_desktop_config.json");
        write(&seed, HOSTILE);
        let meta = third_party[0].join("configLibrary/_meta.json");
        let meta_text =
            "{\"appliedId\":\"work\",\"entries\":[{\"id\":\"work\",\"name\":\"Work\"}]}";
        write(&meta, meta_text);

        // A dry run shows the change, masks the key, writes nothing.
        let out = succeeded(
            moe(
                home.path(),
                user.path(),
                &["wire", "claude-desktop", "--dry-run"],
                &env,
            ),
            "wire --dry-run",
        );
        let shown = text(&out);
        assert!(
            shown.contains("+  \"thirdPartyInference\"")
                || shown.contains("+  \"thirdPartyInference\":"),
            "{shown}"
        );
        assert!(
            shown.contains("moe-sk-••••") && !shown.contains(&key),
            "{shown}"
        );
        assert_eq!(std::fs::read_to_string(&seed).unwrap(), HOSTILE);
        assert!(!third_party[0].join("claude_desktop_config.json").exists());

        let out = succeeded(
            moe(home.path(), user.path(), &["wire", "claude-desktop"], &env),
            "wire",
        );
        assert!(
            !text(&out).contains(&key),
            "{platform}: wire printed the key"
        );
        let seeded = json_at(&seed);
        assert_eq!(
            seeded["thirdPartyInference"]["type"], "gateway",
            "{platform}"
        );
        assert_eq!(seeded["thirdPartyInference"]["apiKey"], key.as_str());
        assert_eq!(seeded["deploymentMode"], "3p");
        assert_eq!(seeded["permissions"]["allow"][0], "Read(~/**)");
        assert_eq!(mode(&seed), 0o600);
        let backups = std::fs::read_dir(&normal)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".moe-backup-")
            })
            .count();
        assert_eq!(backups, 1, "{platform}: one timestamped backup");
        for folder in &third_party {
            let library = folder.join("configLibrary");
            let profile_path = std::fs::read_dir(&library)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| !p.ends_with("_meta.json") && p.extension().is_some_and(|e| e == "json"))
                .unwrap();
            let profile = json_at(&profile_path);
            assert_eq!(profile["inferenceProvider"], "gateway", "{platform}");
            assert_eq!(profile["inferenceGatewayBaseUrl"], "http://127.0.0.1:8742");
            if platform == "wsl" {
                assert_eq!(profile["inferenceGatewayApiKey"], key.as_str());
            } else {
                let helper = profile["inferenceCredentialHelper"].as_str().unwrap();
                // The helper Claude Desktop runs (no arguments) prints the key and nothing else.
                let out = Command::new(helper).output().unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{key}\n"));
                assert!(profile.get("inferenceGatewayApiKey").is_none());
            }
            assert_eq!(
                json_at(&folder.join("claude_desktop_config.json"))["deploymentMode"],
                "3p"
            );
        }
        let applied = json_at(&meta);
        assert_eq!(applied["entries"][0], json!({"id": "work", "name": "Work"}));
        assert_eq!(applied["entries"].as_array().unwrap().len(), 2);

        // Idempotent.
        let again = succeeded(
            moe(home.path(), user.path(), &["wire", "claude-desktop"], &env),
            "wire again",
        );
        assert!(
            !text(&again).contains("updated"),
            "{platform}: {}",
            text(&again)
        );

        succeeded(
            moe(
                home.path(),
                user.path(),
                &["unwire", "claude-desktop"],
                &env,
            ),
            "unwire",
        );
        // As it was, plus `deploymentMode: "1p"` (Claude's own switch back to first-party).
        let restored = HOSTILE.replace(
            "\"/opt/x\"}\n}",
            "\"/opt/x\"},\n  \"deploymentMode\": \"1p\"\n}",
        );
        assert_eq!(
            std::fs::read_to_string(&seed).unwrap(),
            restored,
            "{platform}"
        );
        assert_eq!(
            std::fs::read_to_string(&meta).unwrap(),
            meta_text,
            "{platform}"
        );
        for folder in &third_party {
            assert_eq!(
                json_at(&folder.join("claude_desktop_config.json")),
                json!({"deploymentMode": "1p"})
            );
        }
    }
}

#[test]
fn a_broken_claude_file_is_refused_with_its_line_and_column() {
    let (home, _) = Gateway::home("", "moe_native");
    let user = tempfile::tempdir().unwrap();
    let settings = user.path().join(".claude/settings.json");
    write(&settings, "{\n  \"env\": {\"A\": \"1\",}\n}\n");
    let out = moe(home.path(), user.path(), &["wire", "claude-code"], &[]);
    assert!(!out.status.success());
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(
        message.contains("settings.json") && message.contains("line 2, column 20"),
        "{message}"
    );
    assert_eq!(
        std::fs::read_to_string(&settings).unwrap(),
        "{\n  \"env\": {\"A\": \"1\",}\n}\n"
    );
}

#[test]
fn credential_prints_the_key_only_and_fails_cleanly_once_revoked() {
    let (home, key) = Gateway::home("", "moe_native");
    let user = tempfile::tempdir().unwrap();
    let out = succeeded(
        moe(home.path(), user.path(), &["credential"], &[]),
        "credential",
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{key}\n"));
    assert!(out.stderr.is_empty());
    let list = succeeded(
        moe(home.path(), user.path(), &["keys", "list", "--json"], &[]),
        "keys list",
    );
    let keys: Value = serde_json::from_slice(&list.stdout).unwrap();
    let id = keys[0]["id"].as_str().unwrap().to_owned();
    succeeded(
        moe(home.path(), user.path(), &["keys", "revoke", &id], &[]),
        "revoke",
    );
    let out = moe(
        home.path(),
        user.path(),
        &["credential", "--key-id", &id],
        &[],
    );
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let message = String::from_utf8(out.stderr).unwrap();
    assert_eq!(message.trim_end().lines().count(), 1, "{message}");
    assert!(message.contains(&id), "{message}");
}

#[test]
fn serve_puts_dropped_keys_back_and_leaves_a_broken_file_alone() {
    let user = tempfile::tempdir().unwrap();
    let user_path = user.path().to_string_lossy().into_owned();
    let (home, key) = Gateway::home("", "moe_native");
    let gateway = Gateway::start_in(
        home,
        key,
        &[
            ("HOME", &user_path),
            ("XDG_CONFIG_HOME", ""),
            ("RUST_LOG", "info,moe_sovereign_wiring=trace"),
        ],
    );
    let settings = user.path().join(".claude/settings.json");
    write(&settings, "{\"theme\": \"dark\"}");
    // Wired while serve runs: the watcher picks the new files up.
    succeeded(
        moe(
            gateway.home.path(),
            user.path(),
            &["wire", "claude-code", "--url", &gateway.url],
            &[],
        ),
        "wire",
    );
    eventually(
        "serve watches ~/.claude",
        || {
            gateway
                .log()
                .lines()
                .any(|l| l.contains("watching") && l.contains(".claude"))
        },
        || gateway.log(),
    );

    // Claude (or a person) rewrites the file without our keys.
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&settings, "{\"theme\": \"light\"}").unwrap();
    eventually(
        "the watcher re-applies the wiring",
        || {
            std::fs::read_to_string(&settings)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .is_some_and(|v| {
                    v["env"]["ANTHROPIC_BASE_URL"] == gateway.url.as_str() && v["theme"] == "light"
                })
        },
        || gateway.log(),
    );
    eventually(
        "a log line",
        || gateway.log().contains("re-applied"),
        || gateway.log(),
    );

    std::fs::write(&settings, "{\"theme\": ").unwrap();
    eventually(
        "the broken file is reported",
        || gateway.log().contains("no longer parses"),
        || gateway.log(),
    );
    settled(&gateway);
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), "{\"theme\": ");

    // After unwire, the watcher stops.
    std::fs::write(&settings, "{\"theme\": \"dark\"}").unwrap();
    eventually(
        "re-applied after the repair",
        || {
            std::fs::read_to_string(&settings)
                .unwrap()
                .contains("ANTHROPIC_BASE_URL")
        },
        || gateway.log(),
    );
    succeeded(
        moe(
            gateway.home.path(),
            user.path(),
            &["unwire", "claude-code"],
            &[],
        ),
        "unwire",
    );
    std::fs::write(&settings, "{\"theme\": \"blue\"}").unwrap();
    settled(&gateway);
    assert_eq!(
        std::fs::read_to_string(&settings).unwrap(),
        "{\"theme\": \"blue\"}"
    );
}

#[test]
fn doctor_reports_each_check_and_fails_on_a_broken_file() {
    let (_upstream, gateway) = stack(Flavor::OpenAi, "");
    let user = tempfile::tempdir().unwrap();
    succeeded(
        moe(
            gateway.home.path(),
            user.path(),
            &["wire", "claude-code", "--url", &gateway.url],
            &[],
        ),
        "wire",
    );
    let env = [("MOE_SOVEREIGN_PLATFORM", "linux")];
    let out = succeeded(
        moe(
            gateway.home.path(),
            user.path(),
            &["doctor", "--json"],
            &env,
        ),
        "doctor",
    );
    let checks: Value = serde_json::from_slice(&out.stdout).unwrap();
    let status = |name: &str| {
        checks
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == name)
            .map(|c| c["status"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no check {name}: {checks:#}"))
    };
    assert_eq!(status("gateway"), "ok", "{checks:#}");
    assert_eq!(status("GET /v1/models"), "ok");
    assert_eq!(status("keychain"), "ok");
    assert_eq!(status("claude-code"), "ok");
    assert_eq!(status("claude-desktop"), "info");
    assert_eq!(
        status("web search"),
        "ok",
        "off unless configured: {checks:#}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&gateway.key));

    write(&user.path().join(".claude/settings.json"), "{\"env\": [}");
    let out = moe(gateway.home.path(), user.path(), &["doctor"], &env);
    assert!(!out.status.success());
    let shown = text(&out);
    assert!(
        shown.contains("FAIL") && shown.contains("line 1, column 10"),
        "{shown}"
    );
}

/// The setup script with a fixture home, `env` on top, PATH without moe-sovereign unless `path`.
fn setup_script(user: &Path, env: &[(&str, &str)], path: Option<&Path>) -> Output {
    let script = crate_dir().join("../installers/setup-claude-desktop.sh");
    let system_path = "/usr/local/bin:/usr/bin:/bin";
    let path = match path {
        Some(dir) => format!("{}:{system_path}", dir.display()),
        None => system_path.to_owned(),
    };
    let mut command = Command::new("bash");
    command
        .arg(script)
        .env_clear()
        .env("PATH", path)
        .env("HOME", user)
        .env("MOE_SOVEREIGN_YES", "1");
    if let Some(bus) = std::env::var_os("DBUS_SESSION_BUS_ADDRESS") {
        command.env("DBUS_SESSION_BUS_ADDRESS", bus);
    }
    command.envs(env.iter().copied()).output().unwrap()
}

#[test]
fn the_setup_script_checks_the_key_merges_safely_and_delegates() {
    let (_upstream, gateway) = stack(Flavor::OpenAi, "");
    let user = tempfile::tempdir().unwrap();
    let seed = user
        .path()
        .join(".config/Claude/claude_desktop_config.json");
    write(&seed, HOSTILE);
    let good = [
        ("MOE_SOVEREIGN_URL", gateway.url.as_str()),
        ("MOE_SOVEREIGN_API_KEY", gateway.key.as_str()),
    ];

    // A wrong key, a dead URL, a broken file: clear reasons, nothing written.
    let out = setup_script(
        user.path(),
        &[good[0], ("MOE_SOVEREIGN_API_KEY", "moe-sk-wrong")],
        None,
    );
    assert!(
        !out.status.success() && text(&out).contains("refused the key (401)"),
        "{}",
        text(&out)
    );
    let dead = format!("http://127.0.0.1:{}", moe_sovereign_e2e::tools::free_port());
    let out = setup_script(user.path(), &[("MOE_SOVEREIGN_URL", &dead), good[1]], None);
    assert!(
        !out.status.success() && text(&out).contains("nothing answers"),
        "{}",
        text(&out)
    );
    let third = user
        .path()
        .join(".config/Claude-3p/claude_desktop_config.json");
    write(&third, "{\"deploymentMode\": \"1p\" \"x\": 1}");
    let out = setup_script(user.path(), &good, None);
    assert!(
        !out.status.success() && text(&out).contains("line 1, column 25"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read_to_string(&seed).unwrap(), HOSTILE);
    std::fs::remove_file(&third).unwrap();

    // The script's own merge (no moe-sovereign on PATH).
    let out = setup_script(user.path(), &good, None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !text(&out).contains(&gateway.key),
        "the script printed the key"
    );
    let merged = json_at(&seed);
    let mut expected: Value = serde_json::from_str(HOSTILE).unwrap();
    expected["thirdPartyInference"] =
        json!({"type": "gateway", "baseUrl": gateway.url, "apiKey": gateway.key});
    expected["deploymentMode"] = json!("3p");
    assert_eq!(merged, expected);
    assert_eq!(mode(&seed), 0o600);
    assert!(
        std::fs::read_dir(seed.parent().unwrap()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".moe-backup-")),
        "no backup"
    );
    assert_eq!(json_at(&third)["deploymentMode"], "3p");

    // With moe-sovereign on PATH, `wire` does the merge (and records it for `unwire`).
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(binary(), bin.path().join("moe-sovereign")).unwrap();
    let home = gateway.home.path().to_string_lossy().into_owned();
    let out = setup_script(
        user.path(),
        &[
            good[0],
            ("MOE_SOVEREIGN_HOME", &home),
            ("MOE_SOVEREIGN_PLATFORM", "linux"),
        ],
        Some(bin.path()),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("does the merge"), "{}", text(&out));
    let state = json_at(&gateway.home.path().join("wiring.json"));
    assert_eq!(state["targets"]["claude-desktop"]["wired"], true);
}
