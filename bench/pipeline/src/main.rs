//! `pipeline-bench`: what the orchestrated pipeline costs.
//!
//! 1. **Overhead** (in process): `moe_orchestrated` over fake experts with fixed latencies
//!    (planner 300 ms, three sub-tasks of 200/400/800 ms, merger 300 ms, judge 200 ms, the
//!    answer at once). Its critical path is planner + slowest expert + merger + judge =
//!    1600 ms; the overhead is the total minus that (goal ≤ 50 ms), and the first thinking
//!    byte's delay (goal ≤ 100 ms). A stage that never ran would show as a total under 1600 ms.
//! 2. **Real model** (the release binary, real SmolLM2-135M): native vs reasoning vs
//!    orchestrated on a small fixed question set whose answers a script checks — wall time,
//!    output tokens, correct answers. Reported as measured, including where orchestration
//!    does not help.
//!
//! Run: `cargo build --release -p moe-sovereign-cli && cargo run --release -p pipeline-bench`
//! (`-- --skip-model` for part 1 only). Results: `bench/results/pipeline.md`.

#![expect(clippy::unwrap_used, reason = "benchmark tool: fail loudly")]

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use moe_sovereign_anthropic::{MessagesRequest, StopReason};
use moe_sovereign_e2e::Gateway;
use moe_sovereign_e2e::tools::utc_date;
use moe_sovereign_experts::{Expert, ExpertError, ExpertEvent, ExpertRequest, ExpertStream};
use moe_sovereign_pipeline::Orchestrated;
use serde_json::{Value, json};

/// An expert answering each stage after a fixed delay.
struct Timed;

fn events(text: String, tool: Option<(&str, Value)>) -> Vec<Result<ExpertEvent, ExpertError>> {
    let mut out = Vec::new();
    match tool {
        Some((name, input)) => {
            out.push(Ok(ExpertEvent::ToolUseStart {
                id: "toolu_1".into(),
                name: name.into(),
            }));
            out.push(Ok(ExpertEvent::ToolInputDelta(input.to_string())));
            out.push(Ok(ExpertEvent::BlockEnd));
        }
        None => out.push(Ok(ExpertEvent::Text(text))),
    }
    out.push(Ok(ExpertEvent::Stop {
        reason: StopReason::EndTurn,
        stop_sequence: None,
    }));
    out
}

fn system(body: &MessagesRequest) -> String {
    body.system.as_ref().map(|s| s.text()).unwrap_or_default()
}

impl Expert for Timed {
    fn name(&self) -> &str {
        "timed"
    }
    fn model_label(&self) -> String {
        "fixed latency".into()
    }
    fn stream(&self, request: ExpertRequest) -> BoxFuture<'_, Result<ExpertStream, ExpertError>> {
        let body = request.body;
        let system = system(&body);
        let last = body
            .messages
            .last()
            .map(|m| m.content.text())
            .unwrap_or_default();
        let tool = body
            .tools
            .as_ref()
            .and_then(|t| t.first())
            .map(|t| t.name.clone())
            .unwrap_or_default();
        let (delay, reply) = if tool == "plan" {
            let plan = json!({"tasks": [
                {"task": "t200", "category": "general"},
                {"task": "t400", "category": "general"},
                {"task": "t800", "category": "general"}]});
            (300, events(String::new(), Some(("plan", plan))))
        } else if system.starts_with("Answer the question") {
            let ms = if last.ends_with("t800") {
                800
            } else if last.ends_with("t400") {
                400
            } else {
                200
            };
            (ms, events(format!("answer {ms}"), None))
        } else if system.starts_with("Combine the answers") {
            (300, events("merged".into(), None))
        } else if tool == "verdict" {
            (
                200,
                events(
                    String::new(),
                    Some((
                        "verdict",
                        json!({"score": 9, "missing": "", "replan": false}),
                    )),
                ),
            )
        } else {
            (0, events("direct".into(), None))
        };
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            Ok(futures::stream::iter(reply).boxed())
        })
    }
    fn count_tokens(&self, _: ExpertRequest) -> BoxFuture<'_, Result<u64, ExpertError>> {
        Box::pin(async { Ok(10) })
    }
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * p).round() as usize]
}

async fn overhead(runs: usize) -> String {
    let lead: Arc<dyn Expert> = Arc::new(Timed);
    let stage = Orchestrated::new(lead.clone(), Vec::new(), lead, Duration::from_secs(60));
    let body: MessagesRequest = serde_json::from_value(json!({
        "model": "m", "max_tokens": 2000, "thinking": {"type": "adaptive"},
        "messages": [{"role": "user", "content": "a task"}]
    }))
    .unwrap();
    let (mut totals, mut firsts) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let start = Instant::now();
        let mut stream = stage
            .stream(ExpertRequest {
                body: body.clone(),
                anthropic_version: None,
                anthropic_beta: None,
                session: None,
                key_id: None,
                request_id: None,
            })
            .await
            .unwrap();
        let mut first = None;
        while let Some(event) = stream.next().await {
            if first.is_none() && matches!(event, Ok(ExpertEvent::Thinking(_))) {
                first = Some(start.elapsed().as_secs_f64() * 1000.0);
            }
        }
        totals.push(start.elapsed().as_secs_f64() * 1000.0);
        firsts.push(first.unwrap());
    }
    let critical = 1600.0;
    assert!(
        totals.iter().all(|t| *t >= critical),
        "a stage did not run: {totals:?}"
    );
    let mut over: Vec<f64> = totals.iter().map(|t| t - critical).collect();
    let mut out = String::new();
    writeln!(
        out,
        "## 1. Overhead over the critical path (fake experts, in process, {runs} runs)\n"
    )
    .unwrap();
    writeln!(out, "Planner 300 ms → experts 200/400/800 ms in parallel → merger 300 ms → judge 200 ms: critical path 1600 ms.\n").unwrap();
    writeln!(out, "| | p50 | max | goal |\n|---|---|---|---|").unwrap();
    writeln!(
        out,
        "| total | {:.1} ms | {:.1} ms | |",
        percentile(&mut totals, 0.5),
        percentile(&mut totals, 1.0)
    )
    .unwrap();
    writeln!(
        out,
        "| overhead (total − 1600 ms) | {:.1} ms | {:.1} ms | ≤ 50 ms |",
        percentile(&mut over, 0.5),
        percentile(&mut over, 1.0)
    )
    .unwrap();
    writeln!(
        out,
        "| first thinking byte | {:.2} ms | {:.2} ms | ≤ 100 ms |\n",
        percentile(&mut firsts, 0.5),
        percentile(&mut firsts, 1.0)
    )
    .unwrap();
    out
}

/// The question set: a question and the words any one of which makes the answer correct.
const QUESTIONS: &[(&str, &[&str])] = &[
    ("What is 12 times 12? Answer with the number.", &["144"]),
    ("What is the capital of France?", &["paris"]),
    ("How many legs does a spider have?", &["8", "eight"]),
    ("What is the chemical symbol for gold?", &["au"]),
    ("Which planet is known as the Red Planet?", &["mars"]),
    ("What is 15 plus 27? Answer with the number.", &["42"]),
    ("How many days are in a week?", &["7", "seven"]),
    (
        "At what temperature in Celsius does water boil at sea level?",
        &["100"],
    ),
];

struct Row {
    profile: &'static str,
    correct: usize,
    seconds: Vec<f64>,
    output_tokens: Vec<f64>,
}

async fn ask(gateway: &Gateway, model: &str, question: &str) -> (String, f64, f64) {
    let start = Instant::now();
    let body: Value = reqwest::Client::new()
        .post(format!("{}/v1/messages", gateway.url))
        .header("x-api-key", &gateway.key)
        .timeout(Duration::from_secs(600))
        .json(&json!({
            "model": model, "max_tokens": 400, "temperature": 0,
            "thinking": {"type": "adaptive"},
            "messages": [{"role": "user", "content": question}]
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seconds = start.elapsed().as_secs_f64();
    let text: String = body["content"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .filter_map(|b| b["text"].as_str())
        .collect();
    (
        text,
        seconds,
        body["usage"]["output_tokens"].as_f64().unwrap_or(0.0),
    )
}

fn correct(answer: &str, accepted: &[&str]) -> bool {
    let lower = answer.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).collect();
    accepted.iter().any(|a| words.contains(a))
}

async fn real_model() -> String {
    let gateway = Gateway::with_smollm2("", &[]);
    let mut rows = Vec::new();
    let mut answers = String::new();
    for (profile, model) in [
        ("moe_native", "claude-moe-native"),
        ("moe_reasoning", "claude-moe-reasoning"),
        ("moe_orchestrated", "claude-moe-orchestrated"),
    ] {
        let mut row = Row {
            profile,
            correct: 0,
            seconds: Vec::new(),
            output_tokens: Vec::new(),
        };
        for (question, accepted) in QUESTIONS {
            let (text, seconds, tokens) = ask(&gateway, model, question).await;
            let ok = correct(&text, accepted);
            row.correct += usize::from(ok);
            row.seconds.push(seconds);
            row.output_tokens.push(tokens);
            let short: String = text
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .take(90)
                .collect();
            writeln!(
                answers,
                "| {profile} | {question} | {} | {short} |",
                if ok { "✓" } else { "✗" }
            )
            .unwrap();
            eprintln!(
                "{profile}: {question} → {} ({seconds:.1} s)",
                if ok { "right" } else { "wrong" }
            );
        }
        rows.push(row);
    }
    let mut out = String::new();
    writeln!(
        out,
        "## 2. The real local model: native vs reasoning vs orchestrated\n"
    )
    .unwrap();
    writeln!(out, "SmolLM2-135M-Instruct (Q4_1 → Q8_0) in `moe-sovereign serve`, greedy where the profile allows (orchestrated experts sample at their own temperatures), `thinking: adaptive`, `max_tokens` 400, {} questions whose answers are checked for an accepted word.\n", QUESTIONS.len()).unwrap();
    writeln!(out, "| profile | correct | wall time p50 | wall time max | output tokens p50 |\n|---|---|---|---|---|").unwrap();
    for row in &mut rows {
        writeln!(
            out,
            "| {} | {}/{} | {:.1} s | {:.1} s | {:.0} |",
            row.profile,
            row.correct,
            QUESTIONS.len(),
            percentile(&mut row.seconds, 0.5),
            percentile(&mut row.seconds, 1.0),
            percentile(&mut row.output_tokens, 0.5)
        )
        .unwrap();
    }
    writeln!(out, "\n<details><summary>Every answer</summary>\n\n| profile | question | right | answer (start) |\n|---|---|---|---|\n{answers}\n</details>\n").unwrap();
    out
}

#[tokio::main]
async fn main() {
    let skip_model = std::env::args().any(|a| a == "--skip-model");
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let mut out = format!(
        "# Pipeline benchmark\n\nMeasured {} on this machine ({} cores, {cpu}), `cargo run --release -p pipeline-bench`. No peer in the same run: the reference MoE Sovereign server (LangGraph, several containers) cannot run here; its own assessment reports 41–51 s warm and 157 s cold per orchestrated request against 3.6 s native.\n\n",
        utc_date(),
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    out.push_str(&overhead(20).await);
    if !skip_model {
        out.push_str(&real_model().await);
    }
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../results/pipeline.md");
    std::fs::write(&path, &out).unwrap();
    println!("{out}");
}
