//! Where the test clients live (installed by `scripts/test-deps.sh`), and how to run them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The cache folder of `scripts/test-deps.sh`.
pub fn cache() -> PathBuf {
    std::env::var_os("MOE_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/moe-sovereign-test")
        })
}

fn required(path: PathBuf) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run scripts/test-deps.sh (the README's test command does)",
        path.display()
    );
    path
}

/// The venv's python (with `anthropic` and `llama-cpp-python[server]`).
pub fn python() -> PathBuf {
    required(cache().join("venv/bin/python"))
}

/// The npm folder holding `@anthropic-ai/sdk` and `@anthropic-ai/claude-code`.
pub fn node_dir() -> PathBuf {
    required(cache().join("node"))
}

/// The Claude Code CLI.
pub fn claude() -> PathBuf {
    required(cache().join("node/node_modules/.bin/claude"))
}

/// The entry script of the real MCP server `name` (`everything`, `memory`, `filesystem`).
pub fn mcp_server(name: &str) -> PathBuf {
    required(cache().join(format!(
        "mcp/node_modules/@modelcontextprotocol/server-{name}/dist/index.js"
    )))
}

/// The real SmolLM2-135M-Instruct Q4_1 GGUF.
pub fn smollm2() -> PathBuf {
    required(cache().join("models/SmolLM2-135M-Instruct.Q4_1.gguf"))
}

/// A binary under test: the path in `env`, else `name` next to this test executable
/// (`target/<profile>/`; tools such as benchmarks run from there, tests from `deps/`).
pub fn built(env: &str, name: &str, package: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join(name))
        .find(|path| path.exists())
        .unwrap_or_else(|| {
            panic!("{name} is missing: build it first (cargo build --release -p {package})")
        })
}

/// This crate's folder (for the client scripts).
pub fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `command`, failing the test with its output unless it exits 0.
pub fn run_ok(mut command: Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    succeeded(output, what)
}

/// `output`, after asserting its command succeeded (else both streams are in the message).
pub fn succeeded(output: Output, what: &str) -> Output {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The text an Anthropic SSE body streamed (all `text_delta`s, in order).
pub fn sse_text(body: &str) -> String {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .filter_map(|v| v.pointer("/delta/text")?.as_str().map(str::to_owned))
        .collect()
}

/// Today's date (UTC), for benchmark reports.
pub fn utc_date() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// llama-cpp-python's OpenAI-compatible server on `port` with the SmolLM2 GGUF, 2 threads.
pub fn spawn_llama_server(port: u16, n_ctx: u32) -> LlamaServer {
    spawn_llama_server_with(&smollm2(), port, n_ctx)
}

/// llama.cpp's OpenAI-compatible server on `model` (2 threads, batch 512). Its output goes to a
/// log file, so a test whose server died can say how ([`LlamaServer::state`]).
pub fn spawn_llama_server_with(model: &Path, port: u16, n_ctx: u32) -> LlamaServer {
    let log = tempfile::NamedTempFile::new().unwrap();
    let child = Command::new(python())
        .args([
            "-m",
            "llama_cpp.server",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .arg("--model")
        .arg(model)
        .args([
            "--n_ctx",
            &n_ctx.to_string(),
            "--n_threads",
            "2",
            "--n_batch",
            "512",
        ])
        .args(["--model_alias", "smollm2"])
        .stdout(log.reopen().unwrap())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    LlamaServer { child, log }
}

/// A running llama.cpp server; killed when dropped.
pub struct LlamaServer {
    child: std::process::Child,
    log: tempfile::NamedTempFile,
}

impl LlamaServer {
    /// The server's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// "running", or how the process ended (exit code or signal, e.g. SIGILL), then the last lines
    /// of its output: what a failing assertion should show.
    pub fn state(&mut self) -> String {
        let status = match self.child.try_wait() {
            Ok(None) => "running".to_owned(),
            Ok(Some(status)) => describe_exit(status),
            Err(error) => format!("unknown ({error})"),
        };
        let log = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "llama.cpp server: {status}; its last output:\n{}",
            tail.join("\n")
        )
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An exit status in words, naming the signal that ended the process if one did.
pub fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => {
            let name = match signal {
                4 => " (SIGILL: an instruction this CPU does not run)",
                6 => " (SIGABRT)",
                9 => " (SIGKILL)",
                11 => " (SIGSEGV)",
                15 => " (SIGTERM)",
                _ => "",
            };
            format!("killed by signal {signal}{name}")
        }
        (None, None) => format!("{status}"),
    }
}
