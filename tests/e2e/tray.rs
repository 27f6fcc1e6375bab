//! The tray app (`moe-sovereign-desktop`) on a virtual display, its tray item hosted by a
//! stand-in panel on the session bus: the menu is read and clicked over D-Bus the way a real
//! panel does, the gateway inside the app answers the real Python SDK from the real SmolLM2,
//! and what the menu changes is checked with the CLI and on disk.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use moe_sovereign_e2e::Gateway;
use moe_sovereign_e2e::desktop::{self, App, Display, Host, checked, label_starting};
use moe_sovereign_e2e::tools::{crate_dir, free_port, python, smollm2};

const LIMIT: Duration = Duration::from_secs(60);

/// A scratch user: home folder (Claude's files, autostart) and the app's data folder.
struct User {
    dir: tempfile::TempDir,
    home: tempfile::TempDir,
    port: u16,
}

impl User {
    fn new(with_model: bool) -> Self {
        let port = free_port();
        let (home, _key) = Gateway::home(&format!("listen = \"127.0.0.1:{port}\"\n"), "moe_native");
        if with_model {
            Gateway::cli(home.path(), &["models", "add", smollm2().to_str().unwrap()]);
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".claude")).unwrap();
        Self { dir, home, port }
    }

    fn env(&self, display: &Display) -> Vec<(&'static str, String)> {
        let user = self.dir.path().to_str().unwrap().to_owned();
        vec![
            (
                "MOE_SOVEREIGN_HOME",
                self.home.path().to_str().unwrap().to_owned(),
            ),
            ("DISPLAY", display.name.clone()),
            ("HOME", user.clone()),
            ("XDG_CONFIG_HOME", format!("{user}/.config")),
            ("XDG_DATA_HOME", format!("{user}/.local/share")),
            ("CLAUDE_CONFIG_DIR", format!("{user}/.claude")),
            ("MOE_SOVEREIGN_PLATFORM", "linux".into()),
        ]
    }

    fn cli(&self, args: &[&str]) -> String {
        String::from_utf8(Gateway::cli(self.home.path(), args).stdout).unwrap()
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn health(url: &str) -> Option<u16> {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "2",
        ])
        .arg(format!("{url}/health"))
        .output()
        .ok()?;
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn artifacts() -> std::path::PathBuf {
    crate_dir().join("artifacts/tray")
}

#[test]
fn the_tray_app_serves_and_its_menu_works() {
    let _one = desktop::exclusive();
    let user = User::new(true);
    let display = Display::start();
    let mut host = Host::start();
    let env = user.env(&display);
    let log = user.dir.path().join("app.log");
    // --hidden: no onboarding window at start (the WebDriver test walks through onboarding).
    let mut app = App::start(&mut host, &refs(&env), &["--hidden"], &log);

    // The gateway inside the app answers, and the status line says where.
    wait_until("the embedded gateway answers /health", LIMIT, || {
        health(&user.url()) == Some(200)
    });
    let status = format!("Serving on 127.0.0.1:{}", user.port);
    let layout = app.wait_menu("the status line", LIMIT, |l| {
        label_starting(l, &status).is_some()
    });
    assert_eq!(layout["status"], "Active", "{layout:#}");
    let labels = app.labels();
    for expected in [
        "Profile: moe_native",
        "Profile: moe_reasoning",
        "Profile: moe_orchestrated",
        "Wire Claude Desktop",
        "Wire Claude Code",
        "Copy API key",
        "Add model…",
        "Open dashboard",
        "View logs",
        "Start at login",
        "Quit",
    ] {
        assert!(
            labels.iter().any(|l| l == expected),
            "{expected:?} missing: {labels:?}"
        );
    }
    assert_eq!(checked(&layout), vec!["Profile: moe_native"], "{layout:#}");

    // Profile radio: clicking moe_reasoning switches the default key (the CLI sees it).
    app.click("Profile: moe_reasoning");
    wait_until("profiles list shows moe_reasoning", LIMIT, || {
        user.cli(&["profiles", "list"])
            .lines()
            .any(|l| l.starts_with('*') && l.contains("moe_reasoning"))
    });
    app.wait_menu("exactly moe_reasoning checked", LIMIT, |l| {
        checked(l) == vec!["Profile: moe_reasoning"]
    });
    // A change made elsewhere shows too (the home folder is watched, not polled).
    user.cli(&["profiles", "use", "moe_orchestrated"]);
    app.wait_menu("exactly moe_orchestrated checked", LIMIT, |l| {
        checked(l) == vec!["Profile: moe_orchestrated"]
    });
    // Back to the native profile for the SDK's checks of the model itself (the profiles'
    // own behaviour is tested in profiles.rs).
    app.click("Profile: moe_native");
    app.wait_menu("exactly moe_native checked", LIMIT, |l| {
        checked(l) == vec!["Profile: moe_native"]
    });

    // The real Python SDK gets real answers from the real SmolLM2 through the embedded gateway.
    let key = user.cli(&["credential"]).trim().to_owned();
    let out = Command::new(python())
        .arg(crate_dir().join("clients/python_local.py"))
        .env("MOE_URL", user.url())
        .env("MOE_KEY", &key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        app.log()
    );
    app.wait_menu("the model loaded, nothing open", LIMIT, |l| {
        label_starting(l, &status).is_some_and(|s| s.contains("loaded") && s.ends_with("idle"))
    });
    host.wait_for("a model-loaded notification", LIMIT, |e| {
        e["event"] == "notify" && e["body"].as_str().unwrap_or("").contains("is loaded")
    });

    // Add model…: the native file dialog (it opens in the user's home folder here), then the
    // same registration as `models add`; the outcome comes as a notification.
    std::fs::copy(smollm2(), user.dir.path().join("picked.gguf")).unwrap();
    app.click("Add model…");
    display.pick_file("Add a GGUF model", "picked.gguf", LIMIT);
    host.wait_for("a notification that the model was added", LIMIT, |e| {
        e["event"] == "notify"
            && e["body"]
                .as_str()
                .unwrap_or("")
                .contains("Model picked is registered")
    });
    assert!(user.cli(&["models", "list"]).contains("picked"));

    // Copy API key: the default key, on the clipboard.
    app.click("Copy API key");
    wait_until("the key on the clipboard", LIMIT, || {
        display.clipboard() == key
    });
    // Start at login: checked means really registered (the XDG autostart entry, without a window).
    let autostart = user
        .dir
        .path()
        .join(".config/autostart/moe-sovereign.desktop");
    app.click("Start at login");
    app.wait_menu("Start at login checked", LIMIT, |l| {
        checked(l).contains(&"Start at login".to_owned())
    });
    let entry = std::fs::read_to_string(&autostart).unwrap();
    assert!(entry.contains("moe-sovereign-desktop --hidden"), "{entry}");
    app.click("Start at login");
    app.wait_menu("Start at login unchecked", LIMIT, |l| {
        !checked(l).contains(&"Start at login".to_owned())
    });
    assert!(!autostart.exists(), "the autostart entry is still there");

    // Wire Claude Code in one click; the menu then offers to restore it, and Quit says so.
    let settings = user.dir.path().join(".claude/settings.json");
    let original = "{\n  \"theme\": \"dark\"\n}\n";
    std::fs::write(&settings, original).unwrap();
    app.click("Wire Claude Code");
    wait_until("settings.json points at the gateway", LIMIT, || {
        std::fs::read_to_string(&settings)
            .unwrap()
            .contains(&user.url())
    });
    app.wait_menu("Restore Claude Code and the Quit warning", LIMIT, |l| {
        let labels: Vec<_> = l["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["label"].clone())
            .collect();
        labels.contains(&"Restore Claude Code".into())
            && labels.contains(&"Quit (Claude stays wired to this gateway)".into())
            && labels.contains(&"Restore Claude's settings and quit".into())
    });
    let wired = std::fs::read_to_string(&settings).unwrap();

    // Claude (or a person) drops our settings: the watcher puts them back and says so.
    std::fs::write(&settings, original).unwrap();
    host.wait_for("a notification that the wiring was put back", LIMIT, |e| {
        e["event"] == "notify" && e["body"].as_str().unwrap_or("").contains("were put back")
    });
    wait_until("settings.json wired again", LIMIT, || {
        std::fs::read_to_string(&settings)
            .unwrap()
            .contains(&user.url())
    });
    // A file that stops parsing: left alone, a notification, and the menu shows why.
    let idle_icon = app.layout()["icon"].clone();
    std::fs::write(&settings, "{ \"theme\": ").unwrap();
    host.wait_for("a notification about the broken file", LIMIT, |e| {
        e["event"] == "notify" && e["body"].as_str().unwrap_or("").contains("does not parse")
    });
    let broken = app.wait_menu("the reason in the menu", LIMIT, |l| {
        label_starting(l, "claude-code: ").is_some_and(|a| a.contains("does not parse"))
    });
    assert_ne!(
        broken["icon"], idle_icon,
        "the icon did not change to needs-attention"
    );
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), "{ \"theme\": ");
    std::fs::write(&settings, &wired).unwrap();

    // Open dashboard: a window, signed in without a token step, showing the dashboard (its
    // header of page links; the login page has none). Its contents are checked over WebDriver.
    let (blank, _, _) = display.screenshot(&artifacts().join("before.png"));
    assert!(
        blank <= 2,
        "something was on screen before: {blank} colours"
    );
    app.click("Open dashboard");
    let shot = artifacts().join("window.png");
    wait_until("a window showing the dashboard", LIMIT, || {
        let (colours, header, body) = display.screenshot(&shot);
        colours > 20 && header > 8 && body > 8
    });

    // Closing the window leaves the app in the tray, serving; the screen is empty again.
    assert!(
        display.close_window("MoE Sovereign"),
        "no window titled MoE Sovereign"
    );
    wait_until("the window gone", LIMIT, || {
        display.screenshot(&artifacts().join("closed.png")).0 <= 2
    });
    assert!(
        app.running(),
        "closing the window ended the app: {}",
        app.log()
    );
    assert_eq!(health(&user.url()), Some(200));
    assert!(app.log().contains("the window closed; staying in the tray"));

    // A second launch hands over to the first and exits; the first keeps serving.
    let mut second = desktop::command(&refs(&env)).output().unwrap();
    assert!(second.status.success(), "{second:?}");
    assert!(app.running(), "the first instance died: {}", app.log());
    assert_eq!(health(&user.url()), Some(200));
    // Without a session bus the D-Bus hand-over cannot work; the lock in the home folder says no.
    second = desktop::command(&refs(&env))
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&second.stderr).into_owned();
    assert!(
        second.status.success() && said.contains("already running"),
        "{second:?}"
    );
    assert!(app.running());
    // Opening the dashboard was the user looking: the attention mark is gone.
    app.wait_menu("no attention row", LIMIT, |l| {
        label_starting(l, "claude-code: ").is_none()
    });

    // The key Claude was wired with is revoked elsewhere: a dead end, said at once.
    let keys = user.cli(&["keys", "list", "--json"]);
    let keys: serde_json::Value = serde_json::from_str(&keys).unwrap();
    let id = keys[0]["id"].as_str().unwrap().to_owned();
    user.cli(&["keys", "revoke", &id]);
    host.wait_for("a notification about the revoked key", LIMIT, |e| {
        e["event"] == "notify"
            && e["body"]
                .as_str()
                .unwrap_or("")
                .contains(&format!("uses key {id}, which was revoked"))
    });

    // Restore Claude's settings and quit: the file is back byte for byte, the app exits 0, the
    // port is free.
    app.click("Restore Claude's settings and quit");
    let status = app
        .wait_exit(LIMIT)
        .unwrap_or_else(|| panic!("still running: {}", app.log()));
    assert!(status.success(), "{status:?}\n{}", app.log());
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), original);
    assert!(std::net::TcpListener::bind(("127.0.0.1", user.port)).is_ok());
    assert!(!Path::new(&user.home.path().join("live.json")).exists());
    let log = app.log();
    assert!(!log.contains(&key), "the key leaked into the log");
}

#[test]
fn the_tray_app_takes_the_port_over_from_serve() {
    let _one = desktop::exclusive();
    let user = User::new(false);
    // `serve` of the same home holds the configured port.
    let mut serve = Command::new(moe_sovereign_e2e::gateway::binary())
        .arg("serve")
        .env("MOE_SOVEREIGN_HOME", user.home.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("serve answers", LIMIT, || health(&user.url()) == Some(200));
    let display = Display::start();
    let mut host = Host::start();
    let env = user.env(&display);
    let app = App::start(
        &mut host,
        &refs(&env),
        &["--hidden"],
        &user.dir.path().join("app.log"),
    );
    let taken = format!(
        "Port {} is taken by `moe-sovereign serve` (pid {})",
        user.port,
        serve.id()
    );
    app.wait_menu("the port conflict, said plainly", LIMIT, |l| {
        label_starting(l, &taken).is_some()
    });
    app.click("Take over from `serve`");
    let exited = {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Ok(Some(status)) = serve.try_wait() {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = serve.kill();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert!(
        exited.is_some_and(|s| s.success()),
        "serve did not stop cleanly: {exited:?}"
    );
    app.wait_menu("the app serving", LIMIT, |l| {
        label_starting(l, &format!("Serving on 127.0.0.1:{}", user.port)).is_some()
    });
    assert_eq!(health(&user.url()), Some(200));

    // No model yet: a model registered with the CLI while the app runs answers at once (the
    // home folder is watched; the routes follow the registry).
    let ask = || {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "120"])
            .args(["-H", &format!("x-api-key: {}", user.cli(&["credential"]).trim())])
            .args(["-H", "content-type: application/json", "-H", "anthropic-version: 2023-06-01"])
            .args(["-d", r#"{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[{"role":"user","content":"Hi"}]}"#])
            .arg(format!("{}/v1/messages", user.url()))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_ne!(ask(), "200", "answered without a model");
    user.cli(&["models", "add", smollm2().to_str().unwrap()]);
    wait_until("the new model answers", LIMIT, || ask() == "200");
    app.wait_menu("the model in the status line", LIMIT, |l| {
        label_starting(l, "Serving on").is_some_and(|s| s.contains("smollm2"))
    });
}

/// A W3C WebDriver call to `tauri-driver` at `base`; the JSON answer's `value`.
fn webdriver(
    base: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut command = Command::new("curl");
    command.args([
        "-s",
        "--max-time",
        "120",
        "-X",
        method,
        &format!("{base}{path}"),
    ]);
    if let Some(body) = body {
        command.args([
            "-H",
            "content-type: application/json",
            "-d",
            &body.to_string(),
        ]);
    }
    let out = command.output().unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{method} {path}: {}", String::from_utf8_lossy(&out.stdout)));
    assert!(
        answer["value"]["error"].is_null(),
        "{method} {path}: {answer:#}"
    );
    answer["value"].clone()
}

/// The tauri-driver binary (scripts/test-deps.sh installs it into the test cache).
fn tauri_driver() -> std::path::PathBuf {
    let path = moe_sovereign_e2e::tools::cache().join("cargo/bin/tauri-driver");
    assert!(
        path.exists(),
        "{} is missing: run scripts/test-deps.sh",
        path.display()
    );
    path
}

/// The window users see on Linux is WebKitGTK, not Chromium: onboarding is walked through in
/// it over WebDriver (tauri-driver + Debian's WebKitWebDriver). A first run (no key, Claude not
/// wired) opens the window on the setup page by itself.
#[test]
fn onboarding_in_the_apps_own_webview() {
    let _one = desktop::exclusive();
    let port = free_port();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        format!("listen = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    Gateway::cli(home.path(), &["models", "add", smollm2().to_str().unwrap()]);
    let user = User {
        dir: tempfile::tempdir().unwrap(),
        home,
        port,
    };
    std::fs::create_dir_all(user.dir.path().join(".claude")).unwrap();
    let display = Display::start();
    let _host = Host::start();
    let driver_port = free_port();
    let mut driver = Command::new(tauri_driver())
        .args([
            "--port",
            &driver_port.to_string(),
            "--native-driver",
            "/usr/bin/WebKitWebDriver",
        ])
        .envs(refs(&user.env(&display)))
        .env("NO_AT_BRIDGE", "1")
        .stdout(std::fs::File::create(user.dir.path().join("driver.log")).unwrap())
        .stderr(std::fs::File::create(user.dir.path().join("driver.err")).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{driver_port}");
    wait_until("tauri-driver listens", LIMIT, || {
        Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "--max-time",
                "1",
                &format!("{base}/status"),
            ])
            .status()
            .is_ok_and(|s| s.success())
    });
    let session = webdriver(
        &base,
        "POST",
        "/session",
        Some(serde_json::json!({"capabilities": {"alwaysMatch": {
            "browserName": "wry",
            "tauri:options": {"application": desktop::binary()}
        }}})),
    );
    let id = session["sessionId"].as_str().unwrap().to_owned();
    let at = |path: &str| format!("/session/{id}{path}");
    // Read in one script call: the page re-renders after each action, so an element handle
    // could go stale between finding it and reading it.
    let text_of = |selector: &str| -> Option<String> {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "30", "-X", "POST", "-H", "content-type: application/json"])
            .arg(format!("{base}{}", at("/execute/sync")))
            .args([
                "-d",
                &serde_json::json!({
                    "script": "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
                    "args": [selector],
                })
                .to_string(),
            ])
            .output()
            .ok()?;
        let answer: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        answer["value"].as_str().map(str::to_owned)
    };
    let click = |selector: &str| {
        let found = webdriver(
            &base,
            "POST",
            &at("/element"),
            Some(serde_json::json!({"using": "css selector", "value": selector})),
        );
        let element = found
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned();
        webdriver(
            &base,
            "POST",
            &at(&format!("/element/{element}/click")),
            Some(serde_json::json!({})),
        );
    };

    // Signed in without a token step, on the setup page.
    wait_until("the setup page", LIMIT, || {
        text_of("main h1").is_some_and(|t| t == "Welcome to MoE Sovereign")
    });
    let url = webdriver(&base, "GET", &at("/url"), None);
    assert!(
        url.as_str()
            .unwrap()
            .starts_with(&format!("http://127.0.0.1:{port}/ui/")),
        "{url}"
    );
    // Step 2: a key, in one click (into the real keychain).
    click("#create-key");
    wait_until("the key step done", LIMIT, || {
        text_of("[data-step='2'] p").is_some_and(|t| t.contains("answers with profile moe_native"))
    });
    assert!(user.cli(&["keys", "list"]).contains("moe_native"));
    // Step 3: Claude Code, in one click.
    click("#welcome-wire-claude-code");
    let settings = user.dir.path().join(".claude/settings.json");
    wait_until("settings.json wired", LIMIT, || {
        std::fs::read_to_string(&settings).is_ok_and(|s| s.contains(&user.url()))
    });
    wait_until("the page says so", LIMIT, || {
        text_of("[data-target='claude-code']").is_some_and(|t| t.contains("is wired"))
    });
    let png = webdriver(&base, "GET", &at("/screenshot"), None);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(png.as_str().unwrap())
        .unwrap();
    std::fs::create_dir_all(artifacts()).unwrap();
    std::fs::write(artifacts().join("webview-welcome.png"), &bytes).unwrap();
    assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
    let _ = Command::new("curl")
        .args(["-s", "-X", "DELETE", &format!("{base}/session/{id}")])
        .output();
    let _ = driver.kill();
    let _ = driver.wait();
}
