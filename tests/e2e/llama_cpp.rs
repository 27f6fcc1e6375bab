//! The `openai` expert against a real OpenAI-compatible server: llama-cpp-python serving the
//! real SmolLM2-135M-Instruct GGUF on a free loopback port.

use std::time::{Duration, Instant};

use moe_sovereign_e2e::Gateway;
use moe_sovereign_e2e::tools::{LlamaServer, free_port, spawn_llama_server, sse_text};
use serde_json::{Value, json};

async fn llama_server() -> (LlamaServer, String) {
    let port = free_port();
    let mut server = spawn_llama_server(port, 2048);
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(format!("{url}/v1/models")).await
            && r.status() == 200
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "llama_cpp.server did not start: {}",
            server.state()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (server, url)
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_expert_serves_real_text_from_llama_cpp() {
    let (mut server, url) = llama_server().await;
    // No `model`: the expert discovers it from the server's /v1/models.
    let config =
        format!("[[experts]]\nname = \"llama\"\nkind = \"openai\"\nbase_url = \"{url}/v1\"\n");
    let gateway = Gateway::start(&config, "moe_native");
    let client = reqwest::Client::new();
    let ask = |stream: bool, max_tokens: u64| {
        json!({"model": "claude-opus-4-8", "max_tokens": max_tokens, "stream": stream, "temperature": 0,
               "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=1; cch=2;"},
                          {"type": "text", "text": "You are a helpful assistant."}],
               "messages": [{"role": "user", "content": "What is the capital of France?"}]})
    };

    let response = client
        .post(format!("{}/v1/messages", gateway.url))
        .header("x-api-key", &gateway.key)
        .json(&ask(false, 24))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let message: Value = response.json().await.unwrap();
    assert_eq!(
        status,
        200,
        "gateway answered {message}; {}",
        server.state()
    );
    let text = message["content"][0]["text"].as_str().unwrap();
    assert!(!text.trim().is_empty(), "{message}");
    assert!(
        message["usage"]["input_tokens"].as_u64().unwrap() > 5,
        "{message}"
    );
    assert!(
        message["usage"]["output_tokens"].as_u64().unwrap() > 0,
        "{message}"
    );
    assert!(["end_turn", "max_tokens"].contains(&message["stop_reason"].as_str().unwrap()));

    let response = client
        .post(format!("{}/v1/messages", gateway.url))
        .header("x-api-key", &gateway.key)
        .json(&ask(true, 5))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, 200, "gateway answered {body}; {}", server.state());
    let streamed = sse_text(&body);
    assert!(!streamed.trim().is_empty(), "{body}");
    assert!(
        body.contains(r#""stop_reason":"max_tokens""#),
        "5 tokens must hit max_tokens: {body}"
    );
    assert!(
        body.trim_end()
            .ends_with(r#"data: {"type":"message_stop"}"#),
        "{body}"
    );
}
