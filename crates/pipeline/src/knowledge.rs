//! The knowledge graph in the orchestrated pipeline: facts recalled for a task (the caller's
//! key only), and facts learnt from each answer — extracted by the lead under a JSON schema and
//! merged with their provenance (key, request id, time).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use moe_sovereign_experts::Expert;
use moe_sovereign_graph::{Fact, Graph, Provenance};
use serde_json::{Value, json};

use crate::call;

/// Characters of recalled facts a sub-call gets at most.
pub const RECALL_CHARS: usize = 2000;
/// Facts one answer may add.
pub const MAX_NEW_FACTS: usize = 8;
/// Characters of the answer the extraction reads.
const ANSWER_CHARS: usize = 4000;

const EXTRACT: &str = "Extract the facts worth remembering from the exchange below: who or what (subject), how they relate (relation, a short verb phrase), to whom or what (object). Use short names, only facts the text states, at most 8. Call the tool `facts`.";

fn schema() -> Value {
    let text = json!({"type": "string", "minLength": 1, "maxLength": 120});
    json!({
        "type": "object",
        "properties": {"facts": {
            "type": "array",
            "maxItems": MAX_NEW_FACTS,
            "items": {
                "type": "object",
                "properties": {"subject": text, "relation": text, "object": text},
                "required": ["subject", "relation", "object"],
                "additionalProperties": false
            }
        }},
        "required": ["facts"],
        "additionalProperties": false
    })
}

/// The facts in an extraction's tool input (unusable entries left out).
pub fn parse_facts(input: Option<&Value>) -> Vec<Fact> {
    let field = |v: &Value, name: &str| {
        v.get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    input
        .and_then(|v| v.get("facts"))
        .and_then(Value::as_array)
        .map(|facts| {
            facts
                .iter()
                .filter_map(|f| {
                    Some(Fact {
                        subject: field(f, "subject")?,
                        relation: field(f, "relation")?,
                        object: field(f, "object")?,
                    })
                })
                .take(MAX_NEW_FACTS)
                .collect()
        })
        .unwrap_or_default()
}

/// What `graph` knows of `query` for `key_id`, one fact per line, and how many facts; empty
/// when it knows nothing or cannot be read (logged).
pub async fn recall(graph: &Arc<Graph>, key_id: &str, query: &str) -> (String, usize) {
    let (graph, key_id, query) = (Arc::clone(graph), key_id.to_owned(), query.to_owned());
    let found =
        tokio::task::spawn_blocking(move || graph.context(&key_id, &query, RECALL_CHARS)).await;
    match found {
        Ok(Ok(found)) => found,
        Ok(Err(error)) => {
            tracing::warn!(%error, "knowledge graph not read");
            (String::new(), 0)
        }
        Err(_) => (String::new(), 0),
    }
}

/// Asks `lead` for the facts of `task` and its `answer`, and merges them into `graph` under
/// `key_id`. Failures are logged: learning never affects an answer.
pub async fn learn(
    lead: &dyn Expert,
    graph: &Arc<Graph>,
    model: &str,
    task: &str,
    answer: &str,
    key_id: String,
    request_id: Option<String>,
) -> usize {
    let answer: String = answer.chars().take(ANSWER_CHARS).collect();
    let user = format!("Question:\n{task}\n\nAnswer:\n{answer}");
    let request = call::forced_tool(
        call::request(model, EXTRACT, user, 600, 0.0),
        "facts",
        "Submit the facts.",
        schema(),
    );
    let reply = match call::run(lead, request).await {
        Ok(reply) => reply,
        Err(error) => {
            tracing::warn!(%error, "knowledge graph: no facts extracted");
            return 0;
        }
    };
    let facts = parse_facts(reply.tool_input.as_ref());
    if facts.is_empty() {
        return 0;
    }
    let provenance = Provenance {
        key_id,
        request_id,
        at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    let graph = Arc::clone(graph);
    let stored = tokio::task::spawn_blocking(move || graph.add(&facts, &provenance)).await;
    match stored {
        Ok(Ok(added)) => {
            tracing::info!(added, "knowledge graph: facts learnt");
            added
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "knowledge graph not written");
            0
        }
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_are_read_leniently_and_capped() {
        let input = json!({"facts": [
            {"subject": " X7 ", "relation": "listens on", "object": "port 9977"},
            {"subject": "", "relation": "r", "object": "o"},
            {"subject": "a", "relation": "b"},
            "junk"
        ]});
        assert_eq!(
            parse_facts(Some(&input)),
            [Fact {
                subject: "X7".into(),
                relation: "listens on".into(),
                object: "port 9977".into()
            }]
        );
        let many =
            json!({"facts": vec![json!({"subject": "a", "relation": "b", "object": "c"}); 20]});
        assert_eq!(parse_facts(Some(&many)).len(), MAX_NEW_FACTS);
        assert!(parse_facts(None).is_empty());
    }
}
