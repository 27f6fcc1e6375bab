//! MCP tools through a real MCP client (rmcp) against the real npm servers `everything` (stdio
//! and streamable HTTP), `memory` and `filesystem`; then `moe_orchestrated` using them: the
//! planner gives a task a tool, an expert calls another, the gateway runs both and the results
//! reach the answer and the trace.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use moe_sovereign_e2e::tools::{free_port, mcp_server};
use moe_sovereign_e2e::{FakeUpstream, Gateway};
use moe_sovereign_mcp::{CALL_TIMEOUT, Mcp, McpError, ServerConfig, Transport};
use serde_json::{Value, json};

use crate::UPSTREAM_KEY;

fn stdio(name: &str, server: &str, extra: &[&str], env: &[(&str, &str)]) -> ServerConfig {
    let mut args = vec![mcp_server(server).to_str().unwrap().to_owned()];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    ServerConfig {
        name: name.into(),
        transport: Transport::Stdio {
            command: "node".into(),
            args,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        },
    }
}

/// server-everything over streamable HTTP on `port`, once it accepts connections.
struct HttpServer(Child);

impl HttpServer {
    fn start(port: u16) -> Self {
        let child = Command::new("node")
            .arg(mcp_server("everything"))
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the HTTP MCP server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self(child)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mcp_client_uses_real_servers_over_stdio_and_http() {
    let scratch = tempfile::tempdir().unwrap();
    let allowed = scratch.path().join("allowed");
    std::fs::create_dir(&allowed).unwrap();
    std::fs::write(allowed.join("note.txt"), "the secret word is kumquat").unwrap();
    std::fs::write(scratch.path().join("outside.txt"), "not yours").unwrap();
    let memory_file = scratch.path().join("memory.jsonl");
    let port = free_port();
    let _http = HttpServer::start(port);
    let mcp = Mcp::new(vec![
        stdio("everything", "everything", &[], &[]),
        ServerConfig {
            name: "web".into(),
            transport: Transport::Http {
                url: format!("http://127.0.0.1:{port}/mcp"),
            },
        },
        stdio(
            "memory",
            "memory",
            &[],
            &[("MEMORY_FILE_PATH", memory_file.to_str().unwrap())],
        ),
        stdio("files", "filesystem", &[allowed.to_str().unwrap()], &[]),
    ]);

    let tools = mcp.tools().await;
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    for expected in [
        "everything__echo",
        "everything__get-sum",
        "web__echo",
        "memory__create_entities",
        "memory__read_graph",
        "files__read_text_file",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let sum = tools
        .iter()
        .find(|t| t.name == "everything__get-sum")
        .unwrap();
    assert!(sum.input_schema["properties"]["a"].is_object(), "{sum:?}");

    let echo = mcp
        .call("everything__echo", &json!({"message": "hi"}), CALL_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(echo.text, "Echo: hi");
    let over_http = mcp
        .call("web__get-sum", &json!({"a": 2, "b": 3}), CALL_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(over_http.text, "The sum of 2 and 3 is 5.");

    // The memory server keeps what it is told, in its own file.
    let entities = json!({"entities": [{"name": "Kumquat", "entityType": "fruit", "observations": ["small"]}]});
    mcp.call("memory__create_entities", &entities, CALL_TIMEOUT)
        .await
        .unwrap();
    let graph = mcp
        .call("memory__read_graph", &json!({}), CALL_TIMEOUT)
        .await
        .unwrap();
    assert!(graph.text.contains("Kumquat"), "{graph:?}");
    assert!(
        std::fs::read_to_string(&memory_file)
            .unwrap()
            .contains("Kumquat")
    );

    // The filesystem server reads inside its folder and refuses outside it, as a tool error.
    let inside = mcp
        .call(
            "files__read_text_file",
            &json!({"path": allowed.join("note.txt")}),
            CALL_TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(
        (inside.text.as_str(), inside.is_error),
        ("the secret word is kumquat", false)
    );
    let outside = mcp
        .call(
            "files__read_text_file",
            &json!({"path": scratch.path().join("outside.txt")}),
            CALL_TIMEOUT,
        )
        .await
        .unwrap();
    assert!(outside.is_error, "{outside:?}");
    assert!(!outside.text.contains("not yours"), "{outside:?}");

    // A call past its time limit is an error naming the server; the server still answers after.
    let slow = mcp
        .call(
            "everything__trigger-long-running-operation",
            &json!({"duration": 20, "steps": 2}),
            Duration::from_millis(500),
        )
        .await;
    assert!(
        matches!(&slow, Err(McpError::Timeout { server, .. }) if server == "everything"),
        "{slow:?}"
    );
    let again = mcp
        .call(
            "everything__echo",
            &json!({"message": "still here"}),
            CALL_TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(again.text, "Echo: still here");
    // An unknown tool is a clear error.
    let unknown = mcp.call("nope__x", &json!({}), CALL_TIMEOUT).await;
    assert_eq!(
        unknown.err().map(|e| e.to_string()).as_deref(),
        Some("no MCP server offers a tool named `nope__x`")
    );
    mcp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn moe_orchestrated_runs_mcp_tools_for_its_planner_and_experts() {
    let upstream = FakeUpstream::start(Some(UPSTREAM_KEY));
    let server = mcp_server("everything");
    let config = format!(
        "[[experts]]\nname = \"lead\"\nkind = \"anthropic\"\nbase_url = \"{}\"\napi_key = \"env:FAKE_UPSTREAM_KEY\"\n\n[profiles.moe_orchestrated]\nexpert = \"lead\"\n\n[[mcp_servers]]\nname = \"everything\"\ncommand = \"node\"\nargs = [\"{}\"]\n",
        upstream.url,
        server.display()
    );
    let (home, key) = Gateway::home(&config, "moe_orchestrated");
    let gateway = Gateway::start_in(home, key, &[("FAKE_UPSTREAM_KEY", UPSTREAM_KEY)]);
    let response = reqwest::Client::new()
        .post(format!("{}/v1/messages", gateway.url))
        .header("x-api-key", &gateway.key)
        .json(&json!({
            "model": "claude-opus-4-8", "max_tokens": 1024,
            "messages": [{"role": "user", "content": "What is the sum of 17 and 25? Then echo ping."}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let answer = body["content"][0]["text"].as_str().unwrap_or_default();
    // The planner's tool result and the expert's tool result, both computed by the real server,
    // reach the final answer.
    assert!(
        answer.contains("The sum of 17 and 25 is 42.") && answer.contains("Echo: ping"),
        "{body}\n{}",
        gateway.log()
    );
    // The expert's second round carried the tool's result back; Claude's own request never
    // got MCP tools.
    let requests = upstream.requests();
    assert!(requests.iter().any(|r| {
        r.body["messages"].to_string().contains("tool_result")
            && r.body["messages"].to_string().contains("Echo: ping")
    }));
    let planner = requests
        .iter()
        .find(|r| r.body["tool_choice"]["name"] == "plan")
        .unwrap();
    assert!(
        planner
            .body
            .to_string()
            .contains("everything__get-sum(a, b)")
    );

    let session = gateway.admin_session().await;
    let traces = gateway.admin_get(&session, "/api/requests").await;
    let steps: Vec<(String, String)> = traces["data"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().unwrap().to_owned(),
                s["expert"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (stage, by) in [
        ("tools", "mcp"),
        ("tool", "everything__get-sum"),
        ("tool", "everything__echo"),
    ] {
        assert!(
            steps.iter().any(|(s, e)| s == stage && e == by),
            "no {stage} step by {by}: {steps:?}"
        );
    }
    // doctor names the server and what it may reach.
    let out = Command::new(moe_sovereign_e2e::gateway::binary())
        .args(["doctor", "--json"])
        .env("MOE_SOVEREIGN_HOME", gateway.home.path())
        .output()
        .unwrap();
    let doctor = String::from_utf8_lossy(&out.stdout);
    assert!(doctor.contains("MCP everything"), "{doctor}");
}
