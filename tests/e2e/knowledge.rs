//! The knowledge graph of `moe_orchestrated`, end to end: what one key's requests teach is
//! recalled for that key's later requests and never for another key's; `graph list|search|
//! forget`, revoking a key and the dashboard's Knowledge page (real chromium) forget it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use moe_sovereign_e2e::gateway::binary;
use moe_sovereign_e2e::tools::{crate_dir, node_dir, run_ok};
use moe_sovereign_e2e::{FakeUpstream, Gateway};
use serde_json::Value;

use crate::UPSTREAM_KEY;

async fn ask(gateway: &Gateway, key: &str, text: &str) -> Value {
    gateway.ask(key, "claude-opus-4-8", text, 1024).await
}

fn graph(home: &Path, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["graph"];
    all.extend(args);
    all.push("--json");
    let out = Gateway::cli(home, &all);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Waits (with a deadline) until the key's facts number `count`: learning runs after the answer.
fn wait_for_facts(home: &Path, key_id: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let facts = graph(home, &["list", "--key-id", key_id]);
        if facts.len() == count {
            return facts;
        }
        assert!(
            Instant::now() < deadline,
            "{key_id} has {} facts, not {count}: {facts:#?}",
            facts.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The user text of the planner calls the upstream got after the first `skip` requests.
fn planner_prompts(upstream: &FakeUpstream, skip: usize) -> Vec<String> {
    upstream.requests()[skip..]
        .iter()
        .filter(|r| r.body["tool_choice"]["name"] == "plan")
        .map(|r| r.body["messages"].to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn moe_orchestrated_remembers_per_key_and_forgets_on_request() {
    let upstream = FakeUpstream::start(Some(UPSTREAM_KEY));
    let config = format!(
        "[[experts]]\nname = \"lead\"\nkind = \"anthropic\"\nbase_url = \"{}\"\napi_key = \"env:FAKE_UPSTREAM_KEY\"\n\n[profiles.moe_orchestrated]\nexpert = \"lead\"\n",
        upstream.url
    );
    let (home, key_a) = Gateway::home(&config, "moe_orchestrated");
    let out = Gateway::cli(
        home.path(),
        &[
            "keys",
            "create",
            "--profile",
            "moe_orchestrated",
            "--name",
            "other",
        ],
    );
    let key_b = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let gateway = Gateway::start_in(home, key_a.clone(), &[("FAKE_UPSTREAM_KEY", UPSTREAM_KEY)]);
    let home = gateway.home.path();
    let keys: Vec<Value> =
        serde_json::from_slice(&Gateway::cli(home, &["keys", "list", "--json"]).stdout).unwrap();
    let id_of = |name: &str| {
        keys.iter()
            .find(|k| k["name"] == name)
            .map(|k| k["id"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let (id_a, id_b) = (
        keys.iter()
            .find(|k| k["default"] == true)
            .map(|k| k["id"].as_str().unwrap().to_owned())
            .unwrap(),
        id_of("other"),
    );

    // Key A states two facts; after the answer they are learnt, with their provenance.
    let taught = ask(
        &gateway,
        &key_a,
        "Project Shield uses X7. X7 listens on port 9977.",
    )
    .await;
    let facts = wait_for_facts(home, &id_a, 2);
    let triples: Vec<String> = facts
        .iter()
        .map(|f| format!("{} — {} — {}", f["subject"], f["relation"], f["object"]))
        .collect();
    assert!(
        triples.contains(&"\"X7\" — \"listens on\" — \"port 9977\"".to_owned()),
        "{triples:?}"
    );
    assert!(facts.iter().all(|f| f["key_id"] == id_a.as_str()));
    assert_eq!(
        facts[0]["request_id"], taught["id"],
        "provenance: the request"
    );

    // Key A's next question: the planner is told what the graph knows (two hops from "Project
    // Shield" to the port), and the trace shows the recall.
    let seen = upstream.requests().len();
    ask(&gateway, &key_a, "Which port does Project Shield need?").await;
    let prompts = planner_prompts(&upstream, seen);
    assert!(
        prompts
            .iter()
            .any(|p| p.contains("X7 — listens on — port 9977")
                && p.contains("Project Shield — uses — X7")),
        "the planner was not told the facts: {prompts:#?}"
    );
    let session = gateway.admin_session().await;
    let traces = gateway.admin_get(&session, "/api/requests").await;
    let recalled = traces["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["steps"].as_array().cloned().unwrap_or_default())
        .any(|s| s["stage"] == "graph" && s["outcome"] == "2 facts recalled");
    assert!(recalled, "no recall step in the traces: {traces}");

    // Key B asks the same: it sees nothing of A's graph.
    let seen = upstream.requests().len();
    ask(&gateway, &key_b, "Which port does Project Shield need?").await;
    let prompts = planner_prompts(&upstream, seen);
    assert!(!prompts.is_empty() && prompts.iter().all(|p| !p.contains("X7")));
    assert!(graph(home, &["search", "port", "--key-id", &id_b]).is_empty());
    let found = graph(home, &["search", "ports", "--key-id", &id_a]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        found[0]["object"], "port 9977",
        "stemming: ports finds port"
    );

    // Key B learns a fact of its own; revoking B forgets it and leaves A's.
    ask(&gateway, &key_b, "Gadget uses Z3.").await;
    wait_for_facts(home, &id_b, 1);
    Gateway::cli(home, &["keys", "revoke", &id_b]);
    assert!(graph(home, &["list", "--key-id", &id_b]).is_empty());
    assert_eq!(graph(home, &["list", "--key-id", &id_a]).len(), 2);

    // A wrong id is a clear error that changes nothing.
    let out = Command::new(binary())
        .args(["graph", "forget", "999999"])
        .env("MOE_SOVEREIGN_HOME", home)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no fact with id 999999"));

    // The dashboard's Knowledge page lists, searches and forgets (one, then all of the key).
    ask(&gateway, &key_a, "Relay uses port 443.").await;
    wait_for_facts(home, &id_a, 3);
    let out = Gateway::cli(home, &["ui", "--no-open"]);
    let link = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let mut command = Command::new("node");
    command
        .arg(crate_dir().join("clients/knowledge.mjs"))
        .env("LOGIN_URL", link)
        .env("MOE_URL", &gateway.url)
        .env("MOE_BIN", binary())
        .env("MOE_SOVEREIGN_HOME", home)
        .env("KEY_ID", &id_a)
        .env("ARTIFACTS", crate_dir().join("artifacts/knowledge"))
        .env("CHROMIUM", "/usr/bin/chromium")
        .env("MOE_NODE_DIR", node_dir());
    let out = run_ok(command, "the Knowledge page in chromium");
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("ok   the store agrees"), "{log}");
    assert!(graph(home, &["list"]).is_empty());
}
