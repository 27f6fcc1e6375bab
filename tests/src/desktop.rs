//! The tray app under test: a virtual X display (Xvfb), a stand-in panel on the session bus
//! (`clients/tray_host.py`: a StatusNotifierWatcher and a notification daemon), the real
//! `moe-sovereign-desktop`, and its menu read and clicked over D-Bus like a panel does.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::tools::crate_dir;

/// Debian's python with python3-dbus and python3-gi (a venv's python has neither).
pub const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// The tray app binary: `MOE_SOVEREIGN_DESKTOP_BIN`, else next to the test executable.
pub fn binary() -> PathBuf {
    crate::tools::built(
        "MOE_SOVEREIGN_DESKTOP_BIN",
        "moe-sovereign-desktop",
        "moe-sovereign-desktop",
    )
}

/// One tray test at a time: the panel's bus names and the app's single-instance name are
/// per session bus.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A virtual X display; stopped on drop.
pub struct Display {
    /// `:N`.
    pub name: String,
    child: Child,
}

impl Display {
    /// Starts Xvfb on a free display number (it reports the number it took).
    pub fn start() -> Self {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x900x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("Xvfb: {e} (scripts/test-deps.sh installs xvfb)"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let number = line.trim();
        assert!(!number.is_empty(), "Xvfb did not report a display");
        Self {
            name: format!(":{number}"),
            child,
        }
    }

    /// A screenshot of the whole display at `path`; how many colours it has (1 = blank), how
    /// many its top 40 px band has (a page header), and the band below (a page's content).
    pub fn screenshot(&self, path: &Path) -> (usize, usize, usize) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let out = Command::new(SYSTEM_PYTHON)
            .arg(crate_dir().join("clients/screenshot.py"))
            .arg(path)
            .env("DISPLAY", &self.name)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let mut numbers = text.split_whitespace().map(|n| n.parse().unwrap());
        let mut next = || numbers.next().unwrap();
        (next(), next(), next())
    }
}

impl Display {
    /// Answers the file dialog titled `title` with `name`, a file in the folder it opens in, as
    /// a person would: the location field (Ctrl+L), the name typed, Enter. Waits up to `limit`.
    pub fn pick_file(&self, title: &str, name: &str, limit: Duration) {
        let xdotool = |args: &[&str]| {
            let out = Command::new("xdotool")
                .args(args)
                .env("DISPLAY", &self.name)
                .output()
                .unwrap_or_else(|e| panic!("xdotool: {e} (scripts/test-deps.sh installs it)"));
            String::from_utf8(out.stdout).unwrap()
        };
        let deadline = Instant::now() + limit;
        let window = loop {
            let found = xdotool(&["search", "--onlyvisible", "--name", &format!("^{title}$")]);
            if let Some(id) = found.lines().next() {
                break id.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no dialog titled {title:?} within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        // Keys go where the pointer is (no window manager gives focus here).
        let geometry = xdotool(&["getwindowgeometry", "--shell", &window]);
        let field = |key: &str| -> i64 {
            geometry
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        xdotool(&[
            "mousemove",
            &(field("X") + 300).to_string(),
            &(field("Y") + 300).to_string(),
        ]);
        xdotool(&["key", "ctrl+l"]);
        std::thread::sleep(Duration::from_millis(500));
        xdotool(&["type", "--delay", "50", name]);
        std::thread::sleep(Duration::from_millis(500));
        xdotool(&["key", "Return"]);
    }

    /// Asks the window titled `title` to close, as a window manager's close button does;
    /// whether such a window was there.
    pub fn close_window(&self, title: &str) -> bool {
        Command::new(SYSTEM_PYTHON)
            .arg(crate_dir().join("clients/close_window.py"))
            .arg(title)
            .env("DISPLAY", &self.name)
            .status()
            .unwrap()
            .success()
    }

    /// The clipboard's text, as a paste in another program would get it.
    pub fn clipboard(&self) -> String {
        let out = Command::new(SYSTEM_PYTHON)
            .arg(crate_dir().join("clients/clipboard.py"))
            .env("DISPLAY", &self.name)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// The stand-in panel: it hosts tray items and receives notifications.
pub struct Host {
    child: Child,
    events: Receiver<Value>,
    seen: Vec<Value>,
}

impl Host {
    /// Starts it and waits until it owns its bus names.
    pub fn start() -> Self {
        let mut child = Command::new(SYSTEM_PYTHON)
            .arg(crate_dir().join("clients/tray_host.py"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(event) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(event);
                }
            }
        });
        let mut host = Self {
            child,
            events,
            seen: Vec::new(),
        };
        host.wait_for("the panel to start", Duration::from_secs(30), |e| {
            e["event"] == "ready"
        });
        host
    }

    /// Waits for an event matching `matches` (also one seen before); fails after `limit`.
    pub fn wait_for(
        &mut self,
        what: &str,
        limit: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        if let Some(event) = self.seen.iter().find(|e| matches(e)) {
            return event.clone();
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => {
                    self.seen.push(event.clone());
                    if matches(&event) {
                        return event;
                    }
                }
                Err(_) => panic!("no {what} within {limit:?}; the panel saw: {:?}", self.seen),
            }
        }
    }

    /// Notifications received so far (summary + body).
    pub fn notifications(&mut self) -> Vec<String> {
        while let Ok(event) = self.events.try_recv() {
            self.seen.push(event);
        }
        self.seen
            .iter()
            .filter(|e| e["event"] == "notify")
            .map(|e| format!("{}: {}", e["summary"], e["body"]))
            .collect()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// A running tray app; killed on drop if still running.
pub struct App {
    child: Option<Child>,
    log: PathBuf,
    /// Its registered tray item: bus name and object path.
    pub item: (String, String),
}

/// The tray app's command with `env` (home, display, …) set.
pub fn command(env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(binary());
    command
        .envs(env.iter().copied())
        .env("NO_AT_BRIDGE", "1")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    command
}

impl App {
    /// Starts the app with `args` and waits until its tray item registers with `host`.
    pub fn start(host: &mut Host, env: &[(&str, &str)], args: &[&str], log: &Path) -> Self {
        let child = command(env)
            .args(args)
            .stdout(std::fs::File::create(log).unwrap())
            .stderr(std::fs::File::create(log.with_extension("err")).unwrap())
            .spawn()
            .unwrap();
        let mut app = Self {
            child: Some(child),
            log: log.to_owned(),
            item: (String::new(), String::new()),
        };
        let pid = app.pid();
        let registered = host.wait_for("tray item", Duration::from_secs(60), |e| {
            e["event"] == "registered"
        });
        assert!(app.running(), "the app exited: {}", app.log());
        app.item = (
            registered["service"].as_str().unwrap().to_owned(),
            registered["path"].as_str().unwrap().to_owned(),
        );
        assert!(pid > 0);
        app
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Its output so far (stderr: the log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.with_extension("err")).unwrap_or_default()
    }

    /// The tray item's properties and menu (see `clients/dbusmenu.py`).
    pub fn layout(&self) -> Value {
        let out = Command::new(SYSTEM_PYTHON)
            .arg(crate_dir().join("clients/dbusmenu.py"))
            .args(["layout", &self.item.0, &self.item.1])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}\n{}", self.log());
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The menu's labels, in order.
    pub fn labels(&self) -> Vec<String> {
        self.layout()["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["visible"] == true)
            .map(|i| i["label"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Clicks the item labelled `label`, as a panel does (dbusmenu `Event … clicked`).
    pub fn click(&self, label: &str) {
        let out = Command::new(SYSTEM_PYTHON)
            .arg(crate_dir().join("clients/dbusmenu.py"))
            .args(["click", &self.item.0, &self.item.1, label])
            .output()
            .unwrap();
        assert!(out.status.success(), "click {label:?}: {out:?}");
    }

    /// Waits until the menu satisfies `check`; fails with the last layout after `limit`.
    pub fn wait_menu(&self, what: &str, limit: Duration, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let layout = self.layout();
            if check(&layout) {
                return layout;
            }
            assert!(
                Instant::now() < deadline,
                "the menu never showed {what} within {limit:?}: {layout:#}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the process to exit; its status, or `None` after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill(&mut child);
        }
    }
}

/// The checked items' labels of a layout.
pub fn checked(layout: &Value) -> Vec<String> {
    layout["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["checked"] == true)
        .map(|i| i["label"].as_str().unwrap().to_owned())
        .collect()
}

/// The label of the first item starting with `prefix`.
pub fn label_starting(layout: &Value, prefix: &str) -> Option<String> {
    layout["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["label"].as_str())
        .find(|l| l.starts_with(prefix))
        .map(str::to_owned)
}
