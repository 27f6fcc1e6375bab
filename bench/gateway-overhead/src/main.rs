//! `gateway-overhead`: what the gateway adds to a request, measured, next to LiteLLM's proxy.
//!
//! One run, one machine, one fake OpenAI-compatible upstream (instant answers, in this process):
//! - **direct**: the load generator calls the upstream's `/v1/chat/completions` itself;
//! - **moe-sovereign**: the release binary (`kind = "openai"` expert → the same upstream),
//!   called with Anthropic `/v1/messages` bodies;
//! - **litellm**: LiteLLM's proxy (PyPI `litellm[proxy]`, installed by
//!   `MOE_BENCH_DEPS=1 scripts/test-deps.sh`), same upstream, same Anthropic bodies.
//!
//! Open-loop load at each rate (requests are sent on schedule whether or not earlier ones
//! finished; latency counts from the scheduled send time, so queueing shows). JSON latency is
//! the whole response; stream latency is time to the first body byte. "Added" = target
//! percentile − direct percentile. Results go to `bench/results/gateway-overhead.md`.
//!
//! Run: `cargo build --release -p moe-sovereign-cli && cargo run --release -p gateway-overhead`
//! (`-- --seconds 10 --rates 100,500,1000 --no-litellm`).

#![expect(clippy::unwrap_used, reason = "benchmark tool: fail loudly")]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use moe_sovereign_e2e::FakeUpstream;
use moe_sovereign_e2e::gateway::binary;
use moe_sovereign_e2e::tools::{cache, free_port, utc_date};
use serde_json::{Value, json};

struct Options {
    seconds: u64,
    rates: Vec<u64>,
    litellm: bool,
    out: PathBuf,
}

fn options() -> Options {
    let mut options = Options {
        seconds: 10,
        rates: vec![100, 500, 1000],
        litellm: true,
        out: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../results/gateway-overhead.md"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => options.seconds = args.next().unwrap().parse().unwrap(),
            "--rates" => {
                options.rates = args
                    .next()
                    .unwrap()
                    .split(',')
                    .map(|r| r.parse().unwrap())
                    .collect();
            }
            "--no-litellm" => options.litellm = false,
            "--out" => options.out = PathBuf::from(args.next().unwrap()),
            other => panic!("unknown argument {other}"),
        }
    }
    options
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Clone)]
struct Target {
    name: &'static str,
    url: String,
    headers: Vec<(&'static str, String)>,
    anthropic: bool,
}

impl Target {
    fn body(&self, stream: bool) -> Value {
        if self.anthropic {
            json!({"model": "claude-opus-4-8", "max_tokens": 16, "stream": stream,
                   "messages": [{"role": "user", "content": "hi"}]})
        } else {
            json!({"model": "fake-model", "max_tokens": 16, "stream": stream,
                   "messages": [{"role": "user", "content": "hi"}]})
        }
    }
}

fn start_moe(upstream: &FakeUpstream) -> (Killed, Target, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[[experts]]\nname = \"fake\"\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"fake-model\"\n",
            upstream.url
        ),
    )
    .unwrap();
    let env = |c: &mut Command| {
        c.env("MOE_SOVEREIGN_HOME", home.path())
            .env("MOE_SOVEREIGN_SECRET_STORE", "file")
            .env("RUST_LOG", "warn");
    };
    let mut create = Command::new(binary());
    create.args(["keys", "create", "--profile", "moe_native"]);
    env(&mut create);
    let key = String::from_utf8(create.output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_owned();
    let port = free_port();
    let mut serve = Command::new(binary());
    serve
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    env(&mut serve);
    let child = Killed(serve.spawn().unwrap());
    let target = Target {
        name: "moe-sovereign",
        url: format!("http://127.0.0.1:{port}/v1/messages"),
        headers: vec![
            ("x-api-key", key),
            ("anthropic-version", "2023-06-01".into()),
        ],
        anthropic: true,
    };
    (child, target, home)
}

fn start_litellm(upstream: &FakeUpstream) -> Option<(Killed, Target, tempfile::TempDir, String)> {
    let bin = cache().join("bench-venv/bin/litellm");
    if !bin.exists() {
        eprintln!(
            "litellm not installed ({}); run MOE_BENCH_DEPS=1 scripts/test-deps.sh",
            bin.display()
        );
        return None;
    }
    let version = Command::new(cache().join("bench-venv/bin/python"))
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('litellm'))",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("litellm.yaml");
    std::fs::write(
        &config,
        format!(
            "model_list:\n  - model_name: claude-opus-4-8\n    litellm_params:\n      model: openai/fake-model\n      api_base: {}/v1\n      api_key: unused\ngeneral_settings:\n  master_key: sk-bench-1234\nlitellm_settings:\n  drop_params: true\n",
            upstream.url
        ),
    )
    .unwrap();
    let port = free_port();
    let child = Command::new(bin)
        .arg("--config")
        .arg(&config)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--num_workers",
            "2",
        ])
        .env("LITELLM_LOG", "ERROR")
        // Same upstream endpoint as ours: chat/completions, not OpenAI's Responses API.
        .env(
            "LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES",
            "True",
        )
        .env("LITELLM_TELEMETRY", "False")
        .env("NO_DOCS", "True")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("litellm.log")).unwrap())
        .spawn()
        .unwrap();
    let target = Target {
        name: "litellm",
        url: format!("http://127.0.0.1:{port}/v1/messages"),
        headers: vec![
            ("x-api-key", "sk-bench-1234".into()),
            ("anthropic-version", "2023-06-01".into()),
        ],
        anthropic: true,
    };
    Some((Killed(child), target, dir, version))
}

/// One unmeasured request (warm-up, readiness).
async fn one(client: &reqwest::Client, target: &Target, stream: bool) -> Result<(), String> {
    one_measured(client.clone(), target.clone(), stream, Instant::now())
        .await
        .map(|_| ())
}

/// One request, timed from `start`: the whole JSON answer, or a stream's first bytes (the rest
/// is read off the measured path, so the connection can be reused).
async fn one_measured(
    client: reqwest::Client,
    target: Target,
    stream: bool,
    start: Instant,
) -> Result<Duration, String> {
    let mut request = client.post(&target.url).json(&target.body(stream));
    for (name, value) in &target.headers {
        request = request.header(*name, value);
    }
    let mut response = request.send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    let elapsed = if stream {
        response
            .chunk()
            .await
            .map_err(|e| e.to_string())?
            .ok_or("empty stream")?;
        let first = start.elapsed();
        while response.chunk().await.map_err(|e| e.to_string())?.is_some() {}
        first
    } else {
        response.bytes().await.map_err(|e| e.to_string())?;
        start.elapsed()
    };
    Ok(elapsed)
}

#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    p50: f64,
    p99: f64,
    ok: usize,
    failed: usize,
}

/// Raw results of some load.
#[derive(Debug, Default)]
struct Sample {
    latencies_ms: Vec<f64>,
    failed: usize,
    first_error: Option<String>,
}

impl Sample {
    fn add(&mut self, other: Sample) {
        self.latencies_ms.extend(other.latencies_ms);
        self.failed += other.failed;
        self.first_error = self.first_error.take().or(other.first_error);
    }

    fn stats(&self) -> Stats {
        let mut l = self.latencies_ms.clone();
        l.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            l.get(((l.len() as f64 * p).ceil() as usize).saturating_sub(1))
                .copied()
                .unwrap_or(f64::NAN)
        };
        Stats {
            p50: pct(0.50),
            p99: pct(0.99),
            ok: l.len(),
            failed: self.failed,
        }
    }
}

/// Open-loop load: `rate` requests per second for `seconds`, latency from the scheduled time.
async fn load(target: &Target, stream: bool, rate: u64, seconds: f64) -> Sample {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .unwrap();
    let total = (rate as f64 * seconds) as u64;
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let begin = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = begin + period * i as u32;
        tokio::time::sleep_until(scheduled).await;
        let start = scheduled.into_std();
        let (client, target) = (client.clone(), target.clone());
        tasks.push(tokio::spawn(one_measured(client, target, stream, start)));
    }
    let mut sample = Sample::default();
    for task in tasks {
        match task.await {
            Ok(Ok(d)) => sample.latencies_ms.push(d.as_secs_f64() * 1000.0),
            Ok(Err(e)) => {
                sample.failed += 1;
                sample.first_error.get_or_insert(e);
            }
            Err(e) => {
                sample.failed += 1;
                sample.first_error.get_or_insert(e.to_string());
            }
        }
    }
    sample
}

async fn wait_ready(target: &Target, limit: Duration) -> bool {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if one(&client, target, false).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    false
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// CPU time (user + system) a process has used, in seconds (Linux `/proc`; 0 elsewhere).
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// A cell per (mode, rate) for each target. Targets in one group take turns in rounds of
/// `ROUND` seconds, so slow drifts of the machine hit them alike.
async fn measure(
    group: &[(&Target, Option<u32>)],
    options: &Options,
) -> Vec<Vec<(bool, u64, Stats, Option<f64>)>> {
    const ROUND: f64 = 2.0;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    for (target, _) in group {
        assert!(
            wait_ready(target, Duration::from_secs(120)).await,
            "{} did not become ready",
            target.name
        );
        for _ in 0..200 {
            let _ = one(&client, target, false).await;
            let _ = one(&client, target, true).await;
        }
    }
    let mut cells: Vec<Vec<_>> = group.iter().map(|_| Vec::new()).collect();
    for stream in [false, true] {
        for &rate in &options.rates {
            let mode = if stream { "stream" } else { "json" };
            let mut samples: Vec<Sample> = group.iter().map(|_| Sample::default()).collect();
            let mut cpu: Vec<f64> = vec![0.0; group.len()];
            // A lone target needs no turns: one round of the whole cell.
            let (rounds, round) = if group.len() == 1 {
                (1, options.seconds as f64)
            } else {
                (
                    (options.seconds as f64 / ROUND).ceil().max(1.0) as usize,
                    ROUND,
                )
            };
            for _ in 0..rounds {
                for (i, (target, pid)) in group.iter().enumerate() {
                    // An overloaded peer may need time to recover from earlier load.
                    if !wait_ready(target, Duration::from_secs(30)).await {
                        eprintln!("  {} did not recover", target.name);
                    }
                    let before = pid.map(cpu_seconds);
                    samples[i].add(load(target, stream, rate, round).await);
                    if let (Some(pid), Some(before)) = (pid, before) {
                        cpu[i] += cpu_seconds(*pid) - before;
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
            for (i, (target, pid)) in group.iter().enumerate() {
                let stats = samples[i].stats();
                eprintln!(
                    "{} {mode} @ {rate} rps: p50 {:.2} p99 {:.2} ms, {} failed{}",
                    target.name,
                    stats.p50,
                    stats.p99,
                    stats.failed,
                    samples[i]
                        .first_error
                        .as_deref()
                        .map(|e| format!(" (e.g. {e})"))
                        .unwrap_or_default()
                );
                let per_request =
                    pid.map(|_| cpu[i] * 1e6 / (stats.ok + stats.failed).max(1) as f64);
                cells[i].push((stream, rate, stats, per_request));
            }
        }
    }
    cells
}

fn main() {
    let options = options();
    let upstream = FakeUpstream::start(None);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let direct = Target {
        name: "direct",
        url: format!("{}/v1/chat/completions", upstream.url),
        headers: vec![],
        anthropic: false,
    };
    // Direct and moe-sovereign take turns; LiteLLM runs after them on its own, so its backlog
    // under overload cannot slow the others down.
    let mut results = Vec::new();
    {
        let (moe_process, moe, _home) = start_moe(&upstream);
        let pid = moe_process.0.id();
        let cells = runtime.block_on(measure(&[(&direct, None), (&moe, Some(pid))], &options));
        let mut cells = cells.into_iter();
        results.push((direct.clone(), cells.next().unwrap()));
        results.push((moe.clone(), cells.next().unwrap()));
    }
    let mut litellm_version = None;
    if options.litellm
        && let Some((child, target, _dir, version)) = start_litellm(&upstream)
    {
        litellm_version = Some(version);
        let cells = runtime.block_on(measure(&[(&target, None)], &options));
        results.push((target.clone(), cells.into_iter().next().unwrap()));
        drop(child);
    }

    let mut md = String::new();
    writeln!(md, "# Gateway overhead\n").unwrap();
    writeln!(
        md,
        "Measured {} on this machine ({}, {} cores), `cargo run --release -p gateway-overhead`, {} s per cell, open-loop; direct and moe-sovereign take turns in 2 s rounds, LiteLLM is measured after them in the same run.",
        utc_date(), cpu_model(), std::thread::available_parallelism().map_or(0, |n| n.get()), options.seconds
    )
    .unwrap();
    writeln!(
        md,
        "Upstream: a fake OpenAI-compatible server answering instantly (in the benchmark process). JSON = full response; stream = time to first byte. Latencies in ms; \"added\" = target − direct at the same percentile; \"CPU/req\" = the gateway process's CPU time per request. LiteLLM: {}.\n",
        litellm_version.as_deref().map_or("not run".to_owned(), |v| format!("`litellm[proxy]=={v}`, 2 workers, /v1/messages → chat/completions"))
    )
    .unwrap();
    let mut header = "| mode | rate (rps) | direct p50 / p99 |".to_owned();
    let mut rule = "|---|---|---|".to_owned();
    for (target, _) in &results[1..] {
        write!(
            header,
            " {0} p50 / p99 | {0} added p50 / p99 | {0} ok |",
            target.name
        )
        .unwrap();
        rule.push_str("---|---|---|");
        if target.name == "moe-sovereign" {
            header.push_str(" moe-sovereign CPU/req |");
            rule.push_str("---|");
        }
    }
    writeln!(md, "{header}\n{rule}").unwrap();
    for (i, (stream, rate, direct, _)) in results[0].1.iter().enumerate() {
        let mut line = format!(
            "| {} | {rate} | {:.2} / {:.2} |",
            if *stream { "stream TTFB" } else { "JSON" },
            direct.p50,
            direct.p99
        );
        for (target, cells) in &results[1..] {
            let (_, _, stats, cpu) = cells[i];
            let total = stats.ok + stats.failed;
            let ok = 100.0 * stats.ok as f64 / total.max(1) as f64;
            if stats.ok == 0 {
                write!(line, " — | — | {ok:.1}% |").unwrap();
            } else {
                write!(
                    line,
                    " {:.2} / {:.2} | {:+.2} / {:+.2} | {ok:.1}% |",
                    stats.p50,
                    stats.p99,
                    stats.p50 - direct.p50,
                    stats.p99 - direct.p99
                )
                .unwrap();
            }
            if target.name == "moe-sovereign" {
                write!(line, " {:.0} µs |", cpu.unwrap_or(f64::NAN)).unwrap();
            }
        }
        writeln!(md, "{line}").unwrap();
    }
    println!("{md}");
    if let Some(dir) = options.out.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(&options.out, md).unwrap();
    eprintln!("wrote {}", options.out.display());
}
