//! `local-expert`: our in-process expert (mistral.rs) vs llama.cpp (llama-cpp-python's server),
//! same GGUF (SmolLM2-135M-Instruct Q4_1), same 2 threads, same prompts, same output lengths,
//! greedy, in one run. Both are driven over HTTP with streaming, so TTFT includes each server's
//! own HTTP path (ours: the gateway; theirs: uvicorn).
//!
//! Measured per engine: prefill tok/s (prompt tokens / time to first token), decode tok/s
//! ((output tokens − 1) / time from first to last token), TTFT of a cold turn and of a warm turn
//! that repeats a long prefix (prefix reuse), and the server's peak RSS. Results go to
//! `bench/results/local-expert.md`.
//!
//! Run: `cargo build --release -p moe-sovereign-cli && cargo run --release -p local-expert`.

#![expect(clippy::unwrap_used, reason = "benchmark tool: fail loudly")]

use std::fmt::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use moe_sovereign_e2e::gateway::binary;
use moe_sovereign_e2e::tools::{free_port, python, smollm2, spawn_llama_server_with, utc_date};
use serde_json::{Value, json};

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One timed generation.
#[derive(Debug, Clone, Copy)]
struct Run {
    ttft: f64,
    total: f64,
    input: u64,
    output: u64,
}

impl Run {
    fn prefill(&self) -> f64 {
        self.input as f64 / self.ttft
    }
    fn decode(&self) -> f64 {
        (self.output.saturating_sub(1)) as f64 / (self.total - self.ttft).max(1e-9)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Engine {
    Ours,
    LlamaCpp,
}

struct Server {
    engine: Engine,
    label: String,
    url: String,
    key: String,
    pid: u32,
    /// The server process, killed when this is dropped.
    _child: Box<dyn std::any::Any>,
    _home: Option<tempfile::TempDir>,
}

/// Our gateway on the Q4_1 file, and the Q8_0 copy `models add` made of it (what the engine runs).
fn start_ours() -> (Server, std::path::PathBuf) {
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(binary())
            .args(args)
            .env("MOE_SOVEREIGN_HOME", home.path())
            .env("MOE_SOVEREIGN_SECRET_STORE", "file")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    run(&[
        "models",
        "add",
        smollm2().to_str().unwrap(),
        "--name",
        "smollm2",
    ]);
    let listed: Value = serde_json::from_str(&run(&["models", "list", "--json"])).unwrap();
    let copy = std::path::PathBuf::from(listed[0]["engine_path"].as_str().unwrap());
    let key = run(&["keys", "create"]);
    let port = free_port();
    let child = Command::new(binary())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("MOE_SOVEREIGN_HOME", home.path())
        .env("MOE_SOVEREIGN_SECRET_STORE", "file")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server {
        engine: Engine::Ours,
        label: "moe-sovereign (mistral.rs; the Q4_1 file runs as its Q8_0 copy)".into(),
        url: format!("http://127.0.0.1:{port}"),
        key,
        pid: child.id(),
        _child: Box::new(Killed(child)),
        _home: Some(home),
    };
    (server, copy)
}

fn start_llama_cpp(model: &std::path::Path, label: &str) -> Server {
    let port = free_port();
    let child = spawn_llama_server_with(model, port, 8192);
    Server {
        engine: Engine::LlamaCpp,
        label: label.into(),
        url: format!("http://127.0.0.1:{port}"),
        key: String::new(),
        pid: child.id(),
        _child: Box::new(child),
        _home: None,
    }
}

fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Streams one answer; returns timings and token counts.
async fn generate(
    client: &reqwest::Client,
    server: &Server,
    system: &str,
    user: &str,
    max_tokens: u64,
) -> Run {
    let start = Instant::now();
    let request = match server.engine {
        Engine::Ours => client
            .post(format!("{}/v1/messages", server.url))
            .header("x-api-key", &server.key)
            .json(&json!({"model": "claude-moe-native", "max_tokens": max_tokens, "stream": true,
                          "system": system, "messages": [{"role": "user", "content": user}]})),
        Engine::LlamaCpp => client
            .post(format!("{}/v1/chat/completions", server.url))
            .json(&json!({"model": "smollm2", "max_tokens": max_tokens, "stream": true, "temperature": 0,
                          "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]})),
    };
    let response = request.send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap()
    );
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let (mut first, mut last, mut chunks) = (None, start.elapsed(), 0u64);
    let (mut input, mut output) = (0u64, 0u64);
    while let Some(bytes) = body.next().await {
        buffer.push_str(&String::from_utf8_lossy(&bytes.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<Value>(data) else {
                continue;
            };
            let text = v
                .pointer("/delta/text")
                .or_else(|| v.pointer("/choices/0/delta/content"))
                .and_then(Value::as_str);
            if text.is_some_and(|t| !t.is_empty()) {
                chunks += 1;
                first.get_or_insert(start.elapsed());
                last = start.elapsed();
            }
            if let Some(n) = v
                .pointer("/message/usage/input_tokens")
                .and_then(Value::as_u64)
            {
                input = n;
            }
            if let Some(n) = v.pointer("/usage/output_tokens").and_then(Value::as_u64) {
                output = n;
            }
            if let Some(n) = v
                .pointer("/usage/input_tokens")
                .and_then(Value::as_u64)
                .filter(|n| *n > 0)
            {
                input = n;
            }
        }
    }
    let first = first.unwrap_or(last);
    Run {
        ttft: first.as_secs_f64(),
        total: last.as_secs_f64(),
        input,
        output: if output > 0 { output } else { chunks },
    }
}

/// Prompt tokens as the server counts them (ours: count_tokens; llama.cpp: /extras/tokenize of the
/// same text through its chat template is not exposed, so its prompt size is taken from ours).
async fn count(client: &reqwest::Client, ours: &Server, system: &str, user: &str) -> u64 {
    let v: Value = client
        .post(format!("{}/v1/messages/count_tokens", ours.url))
        .header("x-api-key", &ours.key)
        .json(&json!({"model": "claude-moe-native", "system": system, "messages": [{"role": "user", "content": user}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["input_tokens"].as_u64().unwrap()
}

/// Milliseconds to count (ours: `count_tokens`, chat template included) or tokenize (llama.cpp:
/// `/extras/tokenize`, raw text) a `system` prompt plus a question that changes every call, as
/// Claude Code's turns do: 21 calls in a row: (first call, p50 and max of the next 20, tokens).
async fn time_counting(
    client: &reqwest::Client,
    server: &Server,
    system: &str,
) -> (f64, f64, f64, u64) {
    let mut times = Vec::new();
    let mut tokens = 0;
    for i in 0..21 {
        let question = format!("Summarise rule {i} in five words.");
        let started = Instant::now();
        let request = match server.engine {
            Engine::Ours => client
                .post(format!("{}/v1/messages/count_tokens", server.url))
                .header("x-api-key", &server.key)
                .json(&json!({"model": "claude-moe-native", "system": system,
                    "messages": [{"role": "user", "content": question}]})),
            Engine::LlamaCpp => client
                .post(format!("{}/extras/tokenize", server.url))
                .json(&json!({"model": "smollm2", "input": format!("{system}\n{question}")})),
        };
        let v: Value = request.send().await.unwrap().json().await.unwrap();
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        tokens = v["input_tokens"]
            .as_u64()
            .or_else(|| v["tokens"].as_array().map(|t| t.len() as u64))
            .unwrap();
    }
    let first = times.remove(0);
    times.sort_by(f64::total_cmp);
    (
        first,
        times[times.len() / 2],
        times[times.len() - 1],
        tokens,
    )
}

/// Waits for the server to listen, then runs one tiny generation (which loads the model).
async fn wait_ready(client: &reqwest::Client, server: &Server) {
    let probe = match server.engine {
        Engine::Ours => format!("{}/health", server.url),
        Engine::LlamaCpp => format!("{}/v1/models", server.url),
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while client.get(&probe).send().await.is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    generate(client, server, "You are terse.", "Say ok.", 2).await;
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    // A Claude-Code-shaped long prefix: a big, stable system prompt (SmolLM2's context is 8192).
    let mut system = String::from("You are a coding agent. Follow the rules below.\n");
    let mut i = 0;
    while system.len() < 24_000 {
        i += 1;
        let _ = writeln!(
            system,
            "Rule {i}: keep functions small, name things for what they do, test behaviour not implementation, and never log secrets."
        );
    }
    let short_user = "Tell a long story about a lighthouse keeper and the sea.";
    // A medium prompt (~1.1k tokens) whose first words differ, so no engine reuses the long one.
    let medium: String = format!(
        "You are a code reviewer.\n{}",
        system
            .lines()
            .skip(1)
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // A Claude-Code-sized body for counting (~24k tokens; counting ignores the context limit).
    let huge = system.repeat(4);
    let (rows, counting) = runtime.block_on(async {
        let mut rows = Vec::new();
        let mut counting = Vec::new();
        let mut copy = None;
        let mut ours = None;
        for engine in 0..3 {
            let server = match engine {
                0 => {
                    let (server, q8_0) = start_ours();
                    copy = Some(q8_0);
                    server
                }
                1 => start_llama_cpp(&smollm2(), "llama.cpp (the Q4_1 file)"),
                _ => start_llama_cpp(
                    copy.as_deref().unwrap(),
                    "llama.cpp (our Q8_0 copy: the same tensors ours runs)",
                ),
            };
            // Each engine runs alone on the machine.
            wait_ready(&client, &server).await;
            let decode = generate(&client, &server, "You are a poet.", short_user, 128).await;
            let cold = generate(
                &client,
                &server,
                &system,
                "Summarise rule 3 in five words.",
                16,
            )
            .await;
            let warm = generate(
                &client,
                &server,
                &system,
                "Summarise rule 7 in five words.",
                16,
            )
            .await;
            let mid = generate(
                &client,
                &server,
                &medium,
                "Summarise rule 5 in five words.",
                16,
            )
            .await;
            let rss = peak_rss_mib(server.pid);
            counting.push((
                server.label.clone(),
                time_counting(&client, &server, &huge).await,
            ));
            rows.push((server.label.clone(), decode, mid, cold, warm, rss));
            // Ours stays up to count tokens for llama.cpp (its server reports no usage when
            // streaming); the others go as soon as they are measured.
            if engine == 0 {
                ours = Some(server);
            }
        }
        let ours = ours.unwrap();
        let prompt = count(&client, &ours, &system, "Summarise rule 3 in five words.").await;
        let short = count(&client, &ours, "You are a poet.", short_user).await;
        let mid_prompt = count(&client, &ours, &medium, "Summarise rule 5 in five words.").await;
        let rows = rows
            .into_iter()
            .map(|(label, mut decode, mut mid, mut cold, mut warm, rss)| {
                for (run, n) in [
                    (&mut decode, short),
                    (&mut mid, mid_prompt),
                    (&mut cold, prompt),
                    (&mut warm, prompt),
                ] {
                    if run.input == 0 {
                        run.input = n;
                    }
                }
                (label, decode, mid, cold, warm, rss)
            })
            .collect::<Vec<_>>();
        (rows, counting)
    });

    let version = Command::new(python())
        .args(["-c", "import llama_cpp; print(llama_cpp.__version__)"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    // Which instruction sets each side ran: ours is built for x86-64-v3 (.cargo/config.toml);
    // llama.cpp is compiled here for the host CPU without AMX (scripts/test-deps.sh).
    let llama_isa = Command::new(python())
        .args([
            "-c",
            "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|name| name.trim().to_owned())
        })
        .unwrap_or_default();
    let mut md = String::from("# Local expert vs llama.cpp\n\n");
    let _ = writeln!(
        md,
        "Measured {} on this machine ({} cores), `cargo run --release -p local-expert`. Same file (SmolLM2-135M-Instruct Q4_1), 2 threads, greedy, streamed over HTTP. llama.cpp = `llama-cpp-python[server]=={version}` built here (`--n_threads 2 --n_batch 512`). Ours = mistral.rs 0.8.1 in `moe-sovereign serve`, built with `-C target-cpu=x86-64-v3`, F32 activations, the Q4_1 file's tensors rewritten as Q8_0 by `models add`.\n",
        utc_date(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let _ = writeln!(
        md,
        "CPU: {cpu}. Instruction sets: ours AVX2 + FMA + F16C (x86-64-v3, the same binary on every x86-64-v3 host); llama.cpp `{llama_isa}`.\n"
    );
    md.push_str("| engine | decode tok/s (short prompt, up to 128 out) | prefill tok/s (cold, medium prompt) | prefill tok/s (cold, long prompt) | TTFT cold, long (s) | TTFT warm, same prefix (s) | warm/cold | peak RSS (MiB) |\n|---|---|---|---|---|---|---|---|\n");
    for (label, decode, mid, cold, warm, rss) in &rows {
        let _ = writeln!(
            md,
            "| {} | {:.1} ({} tokens) | {:.0} ({} tokens) | {:.0} ({} tokens) | {:.3} | {:.3} | {:.2} | {:.0} |",
            label,
            decode.decode(),
            decode.output,
            mid.prefill(),
            mid.input,
            cold.prefill(),
            cold.input,
            cold.ttft,
            warm.ttft,
            warm.ttft / cold.ttft,
            rss
        );
    }
    md.push_str("\nCounting a Claude-Code-sized body over HTTP (ours: `count_tokens` with the chat template; llama.cpp: `/extras/tokenize` of the raw text). The same system prompt each time and a new last question, as in Claude Code's turns: the first call, then 20 more:\n\n| engine | tokens | first call (ms) | next turns p50 (ms) | next turns max (ms) |\n|---|---|---|---|---|\n");
    for (label, (first, p50, max, tokens)) in &counting {
        let _ = writeln!(
            md,
            "| {label} | {tokens} | {first:.1} | {p50:.1} | {max:.1} |"
        );
    }
    println!("{md}");
    let out =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../results/local-expert.md");
    std::fs::write(&out, md).unwrap();
    eprintln!("wrote {}", out.display());
}
