//! The real binary, started on a free port with a scratch home.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The `moe-sovereign` binary under test: `MOE_SOVEREIGN_BIN`, else next to this test executable
/// (`target/<profile>/moe-sovereign`).
pub fn binary() -> PathBuf {
    crate::tools::built("MOE_SOVEREIGN_BIN", "moe-sovereign", "moe-sovereign-cli")
}

/// A running gateway; killed on drop.
pub struct Gateway {
    /// Its home folder.
    pub home: TempDir,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its port.
    pub port: u16,
    /// A key issued by `keys create`.
    pub key: String,
    child: Option<Child>,
    stderr: PathBuf,
}

impl Gateway {
    /// A scratch home holding `config` as config.toml, with one key for `profile`.
    pub fn home(config: &str, profile: &str) -> (TempDir, String) {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("config.toml"), config).unwrap();
        let out = Self::cli(home.path(), &["keys", "create", "--profile", profile]);
        let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert!(key.starts_with("moe-sk-"), "keys create printed {key:?}");
        (home, key)
    }

    /// Runs the CLI with `MOE_SOVEREIGN_HOME` = `home`, asserting success.
    pub fn cli(home: &Path, args: &[&str]) -> std::process::Output {
        let mut command = Command::new(binary());
        command.args(args).env("MOE_SOVEREIGN_HOME", home);
        crate::tools::run_ok(command, &format!("moe-sovereign {}", args.join(" ")))
    }

    /// A scratch home holding `config`, a key for `moe_native` and the real SmolLM2 model
    /// (`models add`), served with `env`.
    pub fn with_smollm2(config: &str, env: &[(&str, &str)]) -> Self {
        let (home, key) = Self::home(config, "moe_native");
        Self::cli(
            home.path(),
            &["models", "add", crate::tools::smollm2().to_str().unwrap()],
        );
        Self::start_in(home, key, env)
    }

    /// Starts `serve` with `config` and one fresh key bound to `profile`.
    pub fn start(config: &str, profile: &str) -> Self {
        let (home, key) = Self::home(config, profile);
        Self::start_in(home, key, &[])
    }

    /// Starts `serve` in an existing home, with extra environment.
    pub fn start_in(home: TempDir, key: String, env: &[(&str, &str)]) -> Self {
        let stderr = home.path().join("serve.log");
        let mut child = Command::new(binary())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("MOE_SOVEREIGN_HOME", home.path())
            .env(
                "RUST_LOG",
                "info,moe_sovereign_gateway=debug,moe_sovereign_wiring::watch=debug",
            )
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("listening on ") {
                        break url.to_owned();
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "serve did not print its address:\n{}",
                        std::fs::read_to_string(&stderr).unwrap_or_default()
                    );
                }
            }
        };
        let port = url.rsplit(':').next().unwrap().parse().unwrap();
        Self {
            home,
            url,
            port,
            key,
            child: Some(child),
            stderr,
        }
    }

    /// The gateway's process id (while it runs).
    /// A dashboard session cookie (`name=value`), signed in the way a user is: a one-time link
    /// from `moe-sovereign ui --no-open`, traded for the cookie.
    pub async fn admin_session(&self) -> String {
        let out = Self::cli(self.home.path(), &["ui", "--no-open"]);
        let link = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let token = link
            .strip_prefix(&format!("{}/ui/login#", self.url))
            .unwrap_or_else(|| panic!("ui printed {link:?}"))
            .to_owned();
        let response = reqwest::Client::new()
            .post(format!("{}/api/session", self.url))
            .header("origin", &self.url)
            .json(&serde_json::json!({ "token": token }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let cookie = response.headers()["set-cookie"].to_str().unwrap();
        cookie.split(';').next().unwrap().to_owned()
    }

    /// A non-streaming message with `key` for `model` saying `text`; asserts a 200 and returns
    /// the message.
    pub async fn ask(
        &self,
        key: &str,
        model: &str,
        text: &str,
        max_tokens: u64,
    ) -> serde_json::Value {
        let response = reqwest::Client::new()
            .post(format!("{}/v1/messages", self.url))
            .header("x-api-key", key)
            .json(&serde_json::json!({
                "model": model, "max_tokens": max_tokens,
                "messages": [{"role": "user", "content": text}]
            }))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body
    }

    /// `GET path` of the dashboard's API as a signed-in user (`session` from
    /// [`Gateway::admin_session`]), as JSON.
    pub async fn admin_get(&self, session: &str, path: &str) -> serde_json::Value {
        reqwest::Client::new()
            .get(format!("{}{path}", self.url))
            .header("cookie", session)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends SIGTERM and waits up to `limit` for the process to exit; its exit status.
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        None
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
