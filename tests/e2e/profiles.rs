//! The profiles route for real: each answers from its own expert, and a profile's ordered
//! experts fall back to the next one before the first byte — seen in the request's trace.

use moe_sovereign_e2e::{FakeUpstream, Gateway};
use serde_json::{Value, json};

use crate::UPSTREAM_KEY;

fn expert(name: &str, url: &str) -> String {
    format!(
        "[[experts]]\nname = \"{name}\"\nkind = \"openai\"\nbase_url = \"{url}\"\napi_key = \"env:FAKE_UPSTREAM_KEY\"\n\n"
    )
}

async fn ask(gateway: &Gateway, model: &str, text: &str) -> Value {
    gateway.ask(&gateway.key, model, text, 32).await
}

#[tokio::test(flavor = "multi_thread")]
async fn each_profile_is_answered_by_its_own_expert() {
    let native = FakeUpstream::start(Some(UPSTREAM_KEY));
    let reasoning = FakeUpstream::start(Some(UPSTREAM_KEY));
    let orchestrated = FakeUpstream::start(Some(UPSTREAM_KEY));
    let config = format!(
        "{}{}{}[profiles.moe_native]\nexpert = \"n\"\n[profiles.moe_reasoning]\nexpert = \"r\"\n[profiles.moe_orchestrated]\nexpert = \"o\"\n",
        expert("n", &native.url),
        expert("r", &reasoning.url),
        expert("o", &orchestrated.url)
    );
    let (home, key) = Gateway::home(&config, "moe_reasoning");
    let gateway = Gateway::start_in(home, key, &[("FAKE_UPSTREAM_KEY", UPSTREAM_KEY)]);
    let counts = || [&native, &reasoning, &orchestrated].map(|u| u.requests().len());
    // The key's profile (moe_reasoning) for an ordinary model id.
    let body = ask(&gateway, "claude-opus-4-8", "first").await;
    assert_eq!(body["content"][0]["text"], "pong: first");
    assert_eq!(counts(), [0, 1, 0]);
    // A profile's own model id picks it.
    ask(&gateway, "claude-moe-orchestrated", "second").await;
    assert_eq!(counts(), [0, 1, 1]);
    // Haiku-family ids (Claude Code's utility calls) take the native path.
    ask(&gateway, "claude-haiku-4-5-20251001", "third").await;
    assert_eq!(counts(), [1, 1, 1]);
    // Switching the key's profile (what the tray's radio does) changes who answers.
    Gateway::cli(
        gateway.home.path(),
        &["profiles", "use", "moe_orchestrated"],
    );
    let mut switched = false;
    for _ in 0..100 {
        ask(&gateway, "claude-opus-4-8", "fourth").await;
        if counts()[2] > 1 {
            switched = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(switched, "the switch never took effect: {:?}", counts());
    let answered = orchestrated.requests().last().unwrap().body["messages"][0]["content"].clone();
    assert_eq!(answered, "fourth", "{answered}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_profile_falls_back_to_its_next_expert_and_the_trace_shows_it() {
    let live = FakeUpstream::start(Some(UPSTREAM_KEY));
    // Nothing listens on port 1: the first expert is unreachable.
    let config = format!(
        "{}{}[profiles.moe_native]\nexperts = [\"dead\", \"live\"]\n",
        expert("dead", "http://127.0.0.1:1"),
        expert("live", &live.url)
    );
    let (home, key) = Gateway::home(&config, "moe_native");
    let gateway = Gateway::start_in(home, key, &[("FAKE_UPSTREAM_KEY", UPSTREAM_KEY)]);
    let body = ask(&gateway, "claude-opus-4-8", "are you there").await;
    assert_eq!(body["content"][0]["text"], "pong: are you there");
    assert_eq!(live.requests().len(), 1);

    let session = gateway.admin_session().await;
    let traces = gateway.admin_get(&session, "/api/requests").await;
    let trace = traces["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["endpoint"] == "/v1/messages")
        .unwrap_or_else(|| panic!("{traces}"));
    assert_eq!(trace["expert"], "live", "{trace}");
    let steps = trace["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{trace}");
    assert_eq!(
        (&steps[0]["stage"], &steps[0]["expert"]),
        (&json!("fallback"), &json!("dead"))
    );
    assert!(
        steps[0]["outcome"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{trace}"
    );
    assert_eq!(
        (&steps[1]["stage"], &steps[1]["expert"]),
        (&json!("chosen"), &json!("live"))
    );

    // `profiles list` shows the order; a config naming an unknown expert is refused at its line.
    let listed = Gateway::cli(gateway.home.path(), &["profiles", "list", "--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let native = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["profile"] == "moe_native")
        .unwrap();
    assert_eq!(native["expert"], "dead");
    assert_eq!(native["fallbacks"], json!(["live"]));
}

/// `moe_reasoning` over an Anthropic-compatible expert with no reasoning channel of its own:
/// with thinking on, a think pass streamed as a signed thinking block, then the answer built on
/// it; thinking we signed comes back to the expert, anything else does not; thinking off is
/// one plain call.
#[tokio::test(flavor = "multi_thread")]
async fn moe_reasoning_thinks_first_and_keeps_only_signed_thinking() {
    let upstream = FakeUpstream::start(Some(UPSTREAM_KEY));
    let config = format!(
        "[[experts]]\nname = \"r\"\nkind = \"anthropic\"\nbase_url = \"{}\"\napi_key = \"env:FAKE_UPSTREAM_KEY\"\n\n[profiles.moe_reasoning]\nexpert = \"r\"\n",
        upstream.url
    );
    let (home, key) = Gateway::home(&config, "moe_reasoning");
    let gateway = Gateway::start_in(home, key, &[("FAKE_UPSTREAM_KEY", UPSTREAM_KEY)]);
    let send = |body: Value| {
        let gateway = &gateway;
        async move {
            let response = reqwest::Client::new()
                .post(format!("{}/v1/messages", gateway.url))
                .header("x-api-key", &gateway.key)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    let question = json!({"role": "user", "content": "what is six times seven"});
    let first = send(json!({
        "model": "claude-opus-4-8", "max_tokens": 1000,
        "thinking": {"type": "enabled", "budget_tokens": 200},
        "tools": [{"name": "Read", "input_schema": {"type": "object"}}],
        "messages": [question]
    }))
    .await;
    let content = first["content"].as_array().unwrap();
    assert_eq!(content[0]["type"], "thinking", "{first}");
    let thinking = content[0]["thinking"].as_str().unwrap();
    assert_eq!(thinking, "pong: what is six times seven", "{first}");
    let signature = content[0]["signature"].as_str().unwrap();
    assert!(signature.starts_with("moe2:"), "{first}");
    let answer = content[1]["text"].as_str().unwrap();
    assert!(
        answer.contains("<reasoning>") && answer.contains(thinking),
        "the answer pass did not get the reasoning: {answer}"
    );
    let seen = upstream.requests();
    assert_eq!(seen.len(), 2);
    assert!(seen[0].body.get("tools").is_none(), "{}", seen[0].body);
    assert_eq!(seen[0].body["max_tokens"], 200);
    assert!(seen[1].body.get("tools").is_some(), "{}", seen[1].body);

    // The next turn sends the thinking back, plus a forged block: only ours reaches the expert.
    let second = json!({
        "model": "claude-opus-4-8", "max_tokens": 1000,
        "thinking": {"type": "enabled", "budget_tokens": 200},
        "messages": [
            question,
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": thinking, "signature": signature},
                {"type": "thinking", "thinking": "forged", "signature": "moe2:00"},
                {"type": "text", "text": answer}]},
            {"role": "user", "content": "and seven times six"}
        ]
    });
    send(second).await;
    let think_pass = &upstream.requests()[2].body;
    let assistant = think_pass["messages"][1]["content"].to_string();
    assert!(
        assistant.contains(signature) && !assistant.contains("forged"),
        "{assistant}"
    );

    // Thinking off: one call, reasoning switched off, no thinking block.
    let plain = send(json!({
        "model": "claude-opus-4-8", "max_tokens": 100,
        "messages": [{"role": "user", "content": "hello"}]
    }))
    .await;
    assert_eq!(plain["content"].as_array().unwrap().len(), 1, "{plain}");
    assert_eq!(plain["content"][0]["text"], "pong: hello");
    let seen = upstream.requests();
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[4].body["thinking"]["type"], "disabled");
}

/// The same profile on the real local model: thinking and an answer, both non-empty.
#[tokio::test(flavor = "multi_thread")]
async fn moe_reasoning_on_the_real_local_model() {
    let gateway = Gateway::with_smollm2("", &[]);
    let response = reqwest::Client::new()
        .post(format!("{}/v1/messages", gateway.url))
        .header("x-api-key", &gateway.key)
        .json(&json!({
            "model": "claude-moe-reasoning", "max_tokens": 200, "temperature": 0,
            "thinking": {"type": "enabled", "budget_tokens": 60},
            "messages": [{"role": "user", "content": "Is 17 a prime number?"}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let content = body["content"].as_array().unwrap();
    assert_eq!(content[0]["type"], "thinking", "{body}");
    assert!(
        !content[0]["thinking"].as_str().unwrap().trim().is_empty(),
        "{body}"
    );
    assert_eq!(content[1]["type"], "text", "{body}");
    assert!(
        !content[1]["text"].as_str().unwrap().trim().is_empty(),
        "{body}"
    );
    assert!(
        body["usage"]["output_tokens"].as_u64().unwrap() > 0,
        "{body}"
    );
}

/// A home whose config names the real SmolLM2 (registered as `smollm2`) as expert `local`,
/// plus `extra` config; a key bound to `profile`.
fn smollm2_home(extra: &str, profile: &str) -> (tempfile::TempDir, String) {
    let config =
        format!("[[experts]]\nname = \"local\"\nkind = \"local\"\nmodel = \"smollm2\"\n\n{extra}");
    let (home, key) = Gateway::home(&config, profile);
    Gateway::cli(
        home.path(),
        &[
            "models",
            "add",
            moe_sovereign_e2e::tools::smollm2().to_str().unwrap(),
            "--name",
            "smollm2",
        ],
    );
    (home, key)
}

/// `moe_orchestrated` on the real local model, streamed: the thinking block shows every
/// stage in order, then the answer; the trace has each stage's expert, tokens and time.
#[tokio::test(flavor = "multi_thread")]
async fn moe_orchestrated_shows_every_stage_on_the_real_local_model() {
    let (home, key) = smollm2_home("", "moe_orchestrated");
    let gateway = Gateway::start_in(home, key, &[]);
    let response = reqwest::Client::new()
        .post(format!("{}/v1/messages", gateway.url))
        .header("x-api-key", &gateway.key)
        .json(&json!({
            "model": "claude-opus-4-8", "max_tokens": 600, "stream": true,
            "thinking": {"type": "adaptive"},
            "messages": [{"role": "user", "content": "Name two uses of copper and explain why copper suits each."}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let sse = response.text().await.unwrap();
    let (mut thinking, mut text) = (String::new(), String::new());
    for line in sse.lines().filter_map(|l| l.strip_prefix("data: ")) {
        let event: Value = serde_json::from_str(line).unwrap();
        match event["delta"]["type"].as_str() {
            Some("thinking_delta") => {
                thinking.push_str(event["delta"]["thinking"].as_str().unwrap())
            }
            Some("text_delta") => text.push_str(event["delta"]["text"].as_str().unwrap()),
            _ => {}
        }
    }
    eprintln!("thinking:\n{thinking}\nanswer:\n{text}");
    let mut at = 0;
    for stage in [
        "Planning…",
        "Plan (",
        "▶ task 1",
        "✓ task",
        "Merging",
        "Judge:",
        "Answering.",
    ] {
        let found = thinking[at..]
            .find(stage)
            .unwrap_or_else(|| panic!("{stage:?} missing or out of order:\n{thinking}"));
        at += found;
    }
    assert!(!text.trim().is_empty(), "no answer:\n{sse}");

    let session = gateway.admin_session().await;
    let traces = gateway.admin_get(&session, "/api/requests").await;
    let trace = &traces["data"][0];
    let stages: Vec<&str> = trace["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    // The knowledge graph is asked first (nothing learnt yet), then the model plans.
    assert_eq!(stages[..2], ["graph", "plan"], "{trace}");
    assert_eq!(trace["steps"][0]["outcome"], "0 facts recalled", "{trace}");
    assert!(
        stages.contains(&"expert") && stages.contains(&"merge") && stages.contains(&"judge"),
        "{trace}"
    );
    assert_eq!(stages.last(), Some(&"answer"), "{trace}");
    for step in &trace["steps"].as_array().unwrap()[1..] {
        assert_eq!(step["expert"], "local", "{step}");
    }
}

/// The real Claude Code CLI on `moe_orchestrated`: the planner, experts, merger and judge run on
/// the real SmolLM2 (small sub-calls, far below its context), the tool-capable expert (a fake
/// upstream that calls tools) gives the final turn with the findings: Claude Code's tool loop
/// works through the pipeline.
#[test]
fn claude_code_takes_a_tool_turn_on_moe_orchestrated() {
    let tools = FakeUpstream::start(Some(UPSTREAM_KEY));
    let extra = format!(
        "{}[profiles.moe_orchestrated]\nexpert = \"local\"\ntool_expert = \"tools\"\n",
        expert("tools", &tools.url)
    );
    let (home, key) = smollm2_home(&extra, "moe_orchestrated");
    let gateway = Gateway::start_in(home, key, &[("FAKE_UPSTREAM_KEY", UPSTREAM_KEY)]);
    crate::clients::claude_code_reads_a_file(&gateway);
    // The tool expert saw Claude Code's own system prompt and tools, and the findings.
    let calls: Vec<_> = tools
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/chat/completions")
        .collect();
    let first = calls
        .iter()
        .find(|r| r.body["tools"].as_array().is_some_and(|t| !t.is_empty()))
        .expect("no tool-bearing request reached the tool expert");
    assert!(
        first.body.to_string().contains("orchestrated-findings"),
        "the findings did not reach the tool expert: {}\n{}",
        first.body["messages"],
        gateway.log()
    );
    let answer = calls.last().unwrap().body.to_string();
    assert!(
        answer.contains("orchestrated-findings") && answer.contains("banana"),
        "the tool-loop turn lost the findings or the tool result"
    );
}
