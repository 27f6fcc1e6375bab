use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::json::tests::any_json;

/// A hostile settings file: unicode, escapes, nulls, big and odd numbers, deep nesting, CRLF-free
/// but tab-indented, and a value of ours already set by the user.
const HOSTILE: &str = "{\n\t\"theme\": \"dark \\u00e9 \\\\server\\\\share \\\"quoted\\\" \u{1F600}\",\n\t\"n\": null,\n\t\"big\": 123456789012345678901234567890,\n\t\"exp\": 1E+2,\n\t\"deep\": [[[[[[[[[[{\"x\": [null]}]]]]]]]]]],\n\t\"env\": {\n\t\t\"MY_VAR\": \"$HOME\\\\bin\",\n\t\t\"ANTHROPIC_BASE_URL\": \"https://old.example\"\n\t},\n\t\"permissions\": {\"allow\": [\"Bash(ls:*)\"]}\n}\n";

struct Scratch {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        Self { _dir: dir, root }
    }

    fn wiring(&self, platform: Platform) -> Wiring {
        let env = match platform {
            Platform::Windows => Env {
                home: Some(self.root.join("Users/me")),
                userprofile: Some(self.root.join("Users/me")),
                appdata: Some(self.root.join("Users/me/AppData/Roaming")),
                localappdata: Some(self.root.join("Users/me/AppData/Local")),
                ..Env::default()
            },
            Platform::Wsl => Env {
                home: Some(self.root.join("home/me")),
                userprofile: Some(self.root.join("mnt/c/Users/Me")),
                ..Env::default()
            },
            _ => Env {
                home: Some(self.root.join("home/me")),
                ..Env::default()
            },
        };
        Wiring::new(self.root.join("moe-home"), platform, env)
    }

    fn params(&self) -> Params {
        Params {
            url: "http://127.0.0.1:8742".into(),
            key_id: "key_0011aabb".into(),
            key: "moe-sk-test-secret".into(),
            helper: Wiring::helper_path(&self.root.join("moe-home")),
        }
    }
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn claude_code_round_trip_keeps_every_byte() {
    let s = Scratch::new();
    let wiring = s.wiring(Platform::Linux);
    let settings = s.root.join("home/me/.claude/settings.json");
    write(&settings, HOSTILE);

    let report = wiring.wire(Target::ClaudeCode, &s.params(), false).unwrap();
    assert!(report.files[0].1.changed());
    let wired = read_json(&settings);
    assert_eq!(wired["env"]["ANTHROPIC_BASE_URL"], "http://127.0.0.1:8742");
    assert_eq!(
        wired["env"]["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"],
        "1"
    );
    assert_eq!(
        wired["env"]["CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY"],
        "1"
    );
    assert_eq!(wired["env"]["MY_VAR"], "$HOME\\bin");
    let helper = wired["apiKeyHelper"].as_str().unwrap();
    assert!(
        helper.starts_with('\'') && helper.ends_with("credential-helper'"),
        "{helper}"
    );
    let text = fs::read_to_string(&settings).unwrap();
    assert!(text.contains("123456789012345678901234567890") && text.contains("1E+2"));
    assert!(
        !text.contains("moe-sk-"),
        "the key itself is not in Claude Code's settings"
    );

    // Again: nothing to do.
    let again = wiring.wire(Target::ClaudeCode, &s.params(), false).unwrap();
    assert!(!again.files[0].1.changed());

    wiring.unwire(Target::ClaudeCode, false).unwrap();
    assert_eq!(fs::read_to_string(&settings).unwrap(), HOSTILE);
    assert_eq!(wiring.recorded(Target::ClaudeCode).unwrap(), None);
}

#[test]
fn claude_code_created_from_nothing_is_removed_again() {
    let s = Scratch::new();
    let wiring = s.wiring(Platform::MacOs);
    let settings = s.root.join("home/me/.claude/settings.json");
    wiring.wire(Target::ClaudeCode, &s.params(), false).unwrap();
    assert_eq!(
        read_json(&settings)["env"]["ANTHROPIC_BASE_URL"],
        "http://127.0.0.1:8742"
    );
    wiring.unwire(Target::ClaudeCode, false).unwrap();
    assert!(!settings.exists());
}

#[test]
fn the_watcher_re_applies_nothing_once_a_target_is_unwired() {
    // The watcher decides from a status it read before taking the lock; by then `unwire` may
    // have finished. Re-applying must then do nothing, and leave the target unwired.
    let s = Scratch::new();
    let wiring = s.wiring(Platform::Linux);
    let settings = s.root.join("home/me/.claude/settings.json");
    write(&settings, "{\"theme\": \"dark\"}\n");
    wiring.wire(Target::ClaudeCode, &s.params(), false).unwrap();
    wiring.unwire(Target::ClaudeCode, false).unwrap();
    let report = wiring
        .wire_files(
            Target::ClaudeCode,
            &s.params(),
            false,
            std::slice::from_ref(&settings),
        )
        .unwrap();
    assert!(report.files.is_empty());
    assert_eq!(
        std::fs::read_to_string(&settings).unwrap(),
        "{\"theme\": \"dark\"}\n"
    );
    assert_eq!(wiring.recorded(Target::ClaudeCode).unwrap(), None);
}

#[test]
fn a_value_the_user_changed_after_wiring_stays() {
    let s = Scratch::new();
    let wiring = s.wiring(Platform::Linux);
    let settings = s.root.join("home/me/.claude/settings.json");
    write(&settings, "{\"env\": {\"OTHER\": \"1\"}}");
    wiring.wire(Target::ClaudeCode, &s.params(), false).unwrap();
    let mut doc = json::Document::parse(&fs::read_to_string(&settings).unwrap()).unwrap();
    doc.set(&["env", "ANTHROPIC_BASE_URL"], &json!("http://mine:1"))
        .unwrap();
    fs::write(&settings, doc.text()).unwrap();
    wiring.unwire(Target::ClaudeCode, false).unwrap();
    let after = read_json(&settings);
    assert_eq!(
        after["env"],
        json!({"OTHER": "1", "ANTHROPIC_BASE_URL": "http://mine:1"})
    );
    assert!(after.get("apiKeyHelper").is_none());
}

#[test]
fn a_broken_file_stops_the_wiring_before_anything_is_written() {
    let s = Scratch::new();
    let wiring = s.wiring(Platform::MacOs);
    let base = s.root.join("home/me/Library/Application Support");
    let good = base.join("Claude/claude_desktop_config.json");
    let broken = base.join("Claude-3p/claude_desktop_config.json");
    write(&good, "{\"mcpServers\": {}}");
    write(&broken, "{\"deploymentMode\": \"1p\",\n}");
    let error = wiring
        .wire(Target::ClaudeDesktop, &s.params(), false)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("Claude-3p") && error.contains("line 2, column 1"),
        "{error}"
    );
    assert_eq!(fs::read_to_string(&good).unwrap(), "{\"mcpServers\": {}}");
    assert_eq!(
        fs::read_to_string(&broken).unwrap(),
        "{\"deploymentMode\": \"1p\",\n}"
    );
    assert!(!base.join("Claude-3p/configLibrary").exists());
}

fn desktop_files(s: &Scratch, platform: Platform) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let folders = locate::desktop_folders(platform, &s.wiring(platform).env).unwrap();
    (folders.normal, folders.third_party)
}

#[test]
fn claude_desktop_on_every_layout() {
    for platform in [
        Platform::MacOs,
        Platform::Linux,
        Platform::Windows,
        Platform::Wsl,
    ] {
        let s = Scratch::new();
        let wiring = s.wiring(platform);
        if platform == Platform::Windows {
            fs::create_dir_all(
                s.root
                    .join("Users/me/AppData/Local/Packages/Claude_pzs8sxrjxfjjc"),
            )
            .unwrap();
        }
        let (normal, third_party) = desktop_files(&s, platform);
        let seed = normal[0].join("claude_desktop_config.json");
        write(
            &seed,
            "{\"mcpServers\": {\"fs\": {\"command\": \"npx\"}}, \"deploymentMode\": \"1p\"}",
        );
        let meta = third_party[0].join("configLibrary/_meta.json");
        write(
            &meta,
            "{\"appliedId\": \"other\", \"entries\": [{\"id\": \"other\", \"name\": \"Work\"}]}",
        );

        wiring
            .wire(Target::ClaudeDesktop, &s.params(), false)
            .unwrap();
        let seeded = read_json(&seed);
        assert_eq!(
            seeded["thirdPartyInference"],
            json!({"type": "gateway", "baseUrl": "http://127.0.0.1:8742", "apiKey": "moe-sk-test-secret"}),
            "{platform:?}"
        );
        assert_eq!(seeded["deploymentMode"], "3p");
        assert_eq!(seeded["mcpServers"]["fs"]["command"], "npx");
        for folder in &third_party {
            let config = read_json(&folder.join("claude_desktop_config.json"));
            assert_eq!(config["deploymentMode"], "3p", "{platform:?} {folder:?}");
            let profile =
                read_json(&folder.join(format!("configLibrary/{}.json", plan::DESKTOP_PROFILE_ID)));
            assert_eq!(profile["inferenceProvider"], "gateway");
            assert_eq!(profile["inferenceGatewayBaseUrl"], "http://127.0.0.1:8742");
            assert_eq!(profile["inferenceGatewayAuthScheme"], "bearer");
            if platform == Platform::Wsl {
                assert_eq!(profile["inferenceGatewayApiKey"], "moe-sk-test-secret");
            } else {
                assert!(
                    profile["inferenceCredentialHelper"]
                        .as_str()
                        .unwrap()
                        .ends_with("credential-helper")
                );
                assert!(
                    profile.get("inferenceGatewayApiKey").is_none(),
                    "no key in the profile"
                );
            }
        }
        let applied = read_json(&meta);
        assert_eq!(applied["appliedId"], plan::DESKTOP_PROFILE_ID);
        assert_eq!(
            applied["entries"],
            json!([{"id": "other", "name": "Work"}, {"id": plan::DESKTOP_PROFILE_ID, "name": "MoE Sovereign"}])
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&seed).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        for (_, status) in wiring.status(Target::ClaudeDesktop, &s.params()).unwrap() {
            assert_eq!(status, FileStatus::Parsed { wired: true }, "{platform:?}");
        }

        wiring.unwire(Target::ClaudeDesktop, false).unwrap();
        assert_eq!(
            fs::read_to_string(&seed).unwrap(),
            "{\"mcpServers\": {\"fs\": {\"command\": \"npx\"}}, \"deploymentMode\": \"1p\"}"
        );
        assert_eq!(
            fs::read_to_string(&meta).unwrap(),
            "{\"appliedId\": \"other\", \"entries\": [{\"id\": \"other\", \"name\": \"Work\"}]}"
        );
        for folder in &third_party {
            assert!(
                !folder
                    .join(format!("configLibrary/{}.json", plan::DESKTOP_PROFILE_ID))
                    .exists()
            );
            let config = read_json(&folder.join("claude_desktop_config.json"));
            assert_eq!(config, json!({"deploymentMode": "1p"}), "{platform:?}");
        }
    }
}

#[test]
fn dry_run_changes_nothing() {
    let s = Scratch::new();
    let wiring = s.wiring(Platform::Linux);
    let report = wiring
        .wire(Target::ClaudeDesktop, &s.params(), true)
        .unwrap();
    assert!(report.files.iter().all(|(_, u)| u.changed()));
    assert!(!s.root.join("home").exists());
    assert!(!wiring.state_path().exists());
}

/// Arbitrary top-level objects, sometimes holding keys we also write.
fn any_document() -> impl Strategy<Value = Value> {
    let ours = prop_oneof![
        Just("env"),
        Just("apiKeyHelper"),
        Just("thirdPartyInference"),
        Just("deploymentMode"),
        Just("appliedId"),
        Just("entries"),
    ];
    prop::collection::vec(
        (
            prop_oneof!["\\PC{0,12}".boxed(), ours.prop_map(String::from).boxed()],
            any_json(),
        ),
        0..6,
    )
    .prop_map(|kv| Value::Object(kv.into_iter().collect()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn wire_then_unwire_gives_back_the_original(
        settings in any_document(),
        desktop in any_document(),
        meta in any_document(),
        pretty in any::<bool>(),
    ) {
        let s = Scratch::new();
        let wiring = s.wiring(Platform::Linux);
        let render = |v: &Value| if pretty {
            serde_json::to_string_pretty(v).unwrap()
        } else {
            serde_json::to_string(v).unwrap()
        };
        let files = [
            (s.root.join("home/me/.claude/settings.json"), settings),
            (s.root.join("home/me/.config/Claude/claude_desktop_config.json"), desktop),
            (s.root.join("home/me/.config/Claude-3p/configLibrary/_meta.json"), meta),
        ];
        for (path, value) in &files {
            write(path, &render(value));
        }
        // serde_json's float parsing is not exact: compare with the written text parsed.
        let files = files.map(|(path, _)| {
            let value = read_json(&path);
            (path, value)
        });
        let mut desktop_wired = false;
        for target in Target::ALL {
            // A document whose `env`/`entries` has the wrong type is refused, untouched.
            match wiring.wire(target, &s.params(), false) {
                Ok(_) => desktop_wired |= target == Target::ClaudeDesktop,
                Err(e) => prop_assert!(matches!(e, WiringError::Shape { .. }), "{e}"),
            }
        }
        for target in Target::ALL {
            wiring.unwire(target, false).unwrap();
        }
        for (path, original) in &files {
            let mut after = read_json(path);
            let expected = original.clone();
            if desktop_wired && path.ends_with("claude_desktop_config.json")
                && original.get("deploymentMode").is_none()
            {
                prop_assert_eq!(after.as_object_mut().unwrap().remove("deploymentMode"), Some(json!("1p")));
            }
            prop_assert_eq!(after, expected, "{}", path.display());
        }
    }
}

/// Claude Code's settings (`{"theme": "dark"}`) wired in a scratch home: the scratch, the
/// wiring and the file.
fn wired_claude_code() -> (Scratch, Wiring, PathBuf) {
    let s = Scratch::new();
    let wiring = s.wiring(Platform::Linux);
    let settings = s.root.join("home/me/.claude/settings.json");
    write(&settings, "{\"theme\": \"dark\"}");
    wiring.wire(Target::ClaudeCode, &s.params(), false).unwrap();
    (s, wiring, settings)
}

/// A watcher over `wiring` with `s`'s parameters, and its events.
fn watching(
    s: &Scratch,
    wiring: &Wiring,
) -> (
    watch::Watcher,
    tokio::sync::broadcast::Receiver<watch::Event>,
) {
    let params = s.params();
    let (events, rx) = tokio::sync::broadcast::channel(16);
    let watcher = watch::spawn(
        wiring.clone(),
        std::sync::Arc::new(move |_, _, _| Ok(params.clone())),
        events,
    )
    .unwrap();
    (watcher, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_reapplies_reports_and_respects_unwire() {
    use std::time::Duration;

    let (s, wiring, settings) = wired_claude_code();
    let (_watcher, mut rx) = watching(&s, &wiring);
    // The next event other than a finished pass.
    let next = |rx: &mut tokio::sync::broadcast::Receiver<watch::Event>| {
        let rx = rx.resubscribe();
        async move {
            let mut rx = rx;
            tokio::time::timeout(Duration::from_secs(20), async {
                loop {
                    match rx.recv().await {
                        Ok(watch::Event::Checked { .. }) => continue,
                        other => return other,
                    }
                }
            })
            .await
        }
    };
    // The end of a check that started after now (one is forced by touching wiring.json).
    let settled = |rx: &mut tokio::sync::broadcast::Receiver<watch::Event>| {
        let mut rx = rx.resubscribe();
        let state = wiring.state_path();
        async move {
            let now = std::time::Instant::now();
            let copy = state.with_extension("touch");
            fs::copy(&state, &copy).unwrap();
            fs::rename(&copy, &state).unwrap();
            tokio::time::timeout(Duration::from_secs(20), async {
                loop {
                    if let Ok(watch::Event::Checked { started }) = rx.recv().await
                        && started >= now
                    {
                        return;
                    }
                }
            })
            .await
            .expect("the watcher did not check again");
        }
    };

    // The first check (at start) has run.
    match tokio::time::timeout(Duration::from_secs(20), rx.recv()).await {
        Ok(Ok(watch::Event::Checked { .. })) => {}
        other => panic!("{other:?}"),
    }

    // Someone rewrites the file without our keys.
    let waiting = next(&mut rx);
    fs::write(&settings, "{\"theme\": \"light\"}").unwrap();
    let event = waiting.await.expect("no event").unwrap();
    assert_eq!(
        event,
        watch::Event::Reapplied {
            target: Target::ClaudeCode,
            file: settings.clone()
        }
    );
    let now = read_json(&settings);
    assert_eq!(now["theme"], "light", "{now}");
    assert_eq!(now["env"]["ANTHROPIC_BASE_URL"], "http://127.0.0.1:8742");

    // A broken file is reported and left alone, also by the next pass.
    let waiting = next(&mut rx);
    fs::write(&settings, "{\"theme\": ").unwrap();
    match waiting.await.expect("no event").unwrap() {
        watch::Event::Broken { file, line, .. } => assert_eq!((file, line), (settings.clone(), 1)),
        other => panic!("{other:?}"),
    }
    settled(&mut rx).await;
    assert_eq!(fs::read_to_string(&settings).unwrap(), "{\"theme\": ");

    // After unwire, a rewrite stays as written.
    fs::write(&settings, "{\"theme\": \"dark\"}").unwrap();
    let waiting = next(&mut rx);
    let reapplied = waiting.await.expect("no event").unwrap();
    assert!(
        matches!(reapplied, watch::Event::Reapplied { .. }),
        "{reapplied:?}"
    );
    wiring.unwire(Target::ClaudeCode, false).unwrap();
    assert_eq!(read_json(&settings), json!({"theme": "dark"}));
    fs::write(&settings, "{\"theme\": \"blue\"}").unwrap();
    settled(&mut rx).await;
    assert_eq!(
        fs::read_to_string(&settings).unwrap(),
        "{\"theme\": \"blue\"}"
    );
}

/// Backups keep the user's content but never one of our keys: not when a wired file is wired
/// again with another key (its backup held the old key), and not in a backup left by an older
/// version, once the target is unwired.
#[test]
fn no_backup_keeps_a_key_of_ours() {
    let s = Scratch::new();
    let wiring = s.wiring(Platform::MacOs);
    let seed = s
        .root
        .join("home/me/Library/Application Support/Claude/claude_desktop_config.json");
    write(&seed, "{\"mcpServers\": {\"mine\": {\"command\": \"x\"}}}");
    let key = |n: u8| format!("moe-sk-{}", format!("{n:02x}").repeat(24));
    let with_key = |n: u8| Params {
        key: key(n),
        ..s.params()
    };
    wiring
        .wire(Target::ClaudeDesktop, &with_key(1), false)
        .unwrap();
    wiring
        .wire(Target::ClaudeDesktop, &with_key(2), false)
        .unwrap();
    assert!(fs::read_to_string(&seed).unwrap().contains(&key(2)));
    // A backup an older version wrote, key and all.
    let legacy = seed.with_file_name("claude_desktop_config.json.moe-backup-20200101T000000.000Z");
    write(
        &legacy,
        &format!(
            "{{\"thirdPartyInference\": {{\"apiKey\": \"{}\"}}}}",
            key(1)
        ),
    );
    let backups = file::backups(&seed);
    assert!(backups.len() >= 2, "{backups:?}");
    let newest = fs::read_to_string(&backups[0]).unwrap();
    assert!(
        newest.contains(moe_sovereign_keys::REDACTED_KEY) && newest.contains("\"mine\""),
        "{newest}"
    );

    wiring.unwire(Target::ClaudeDesktop, false).unwrap();
    for backup in file::backups(&seed) {
        let text = fs::read_to_string(&backup).unwrap();
        assert!(
            !text.contains(&key(1)) && !text.contains(&key(2)),
            "{}: {text}",
            backup.display()
        );
        serde_json::from_str::<Value>(&text).unwrap();
    }
}

/// A program half-way through writing a wired file (truncated, not yet filled) when a check
/// runs — the watcher's first check at start is not debounced — must not have its content
/// clobbered: the file is left until it has been quiet, then re-applied with the content kept.
#[test]
fn a_file_being_written_is_left_until_it_is_quiet() {
    let (s, wiring, settings) = wired_claude_code();
    let params = s.params();
    let params_for: watch::ParamsFor = std::sync::Arc::new(move |_, _, _| Ok(params.clone()));
    let (events, _rx) = tokio::sync::broadcast::channel(16);
    let mut reported = std::collections::BTreeMap::new();

    // Truncated just now by another program.
    fs::write(&settings, "").unwrap();
    assert!(
        watch::check(&wiring, &params_for, &events, &mut reported),
        "postponed"
    );
    assert_eq!(fs::read_to_string(&settings).unwrap(), "");

    // Its write finished and settled: re-applied, the program's content kept.
    fs::write(&settings, "{\"theme\": \"light\"}").unwrap();
    let quiet = std::time::SystemTime::now() - watch::DEBOUNCE * 2;
    fs::File::options()
        .write(true)
        .open(&settings)
        .unwrap()
        .set_modified(quiet)
        .unwrap();
    assert!(!watch::check(&wiring, &params_for, &events, &mut reported));
    let now = read_json(&settings);
    assert_eq!(now["theme"], "light", "{now}");
    assert_eq!(now["env"]["ANTHROPIC_BASE_URL"], "http://127.0.0.1:8742");
}

/// A file changed just before a check (here: while the watcher did not yet count it as wired,
/// so its event started no check of its own) is looked at again once quiet, not forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postponed_file_is_checked_again_without_another_event() {
    use std::time::Duration;

    let (s, wiring, settings) = wired_claude_code();
    // Unwired by hand just now: the first check (at start) must leave it, then come back.
    write(&settings, "{\"theme\": \"light\"}");
    let (_watcher, mut rx) = watching(&s, &wiring);
    let reapplied = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(watch::Event::Reapplied { file, .. }) = rx.recv().await {
                return file;
            }
        }
    })
    .await
    .expect("the postponed file was never checked again");
    assert_eq!(reapplied, settings);
    let now = read_json(&settings);
    assert_eq!(now["theme"], "light", "{now}");
}
