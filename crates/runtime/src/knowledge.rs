//! The knowledge graph as the CLI (`graph …`) and the dashboard see it: one implementation of
//! listing, searching and forgetting, over the store in the home folder.

use moe_sovereign_graph::{Graph, GraphError, StoredFact};
use moe_sovereign_keys::KeyManager;
use serde_json::{Value, json};

use crate::Home;

/// Facts listed at most when no limit is given.
pub const DEFAULT_LIMIT: usize = 200;

/// The store in `home` (created empty when there is none yet).
pub fn open(home: &Home) -> Result<Graph, GraphError> {
    Graph::open(&home.graph_path())
}

/// The `graph list --json` / `graph search --json` rows: newest first, or best match first
/// for a query; each with its key's name where the key still exists.
pub fn fact_rows(
    graph: &Graph,
    keys: &KeyManager,
    key_id: Option<&str>,
    query: Option<&str>,
    limit: usize,
) -> Result<Vec<Value>, GraphError> {
    let facts = match query.map(str::trim).filter(|q| !q.is_empty()) {
        Some(query) => graph.search(key_id, query, limit)?,
        None => graph.list(key_id, limit)?,
    };
    let names: Vec<(String, String)> = keys
        .load()
        .map(|file| file.keys.into_iter().map(|k| (k.id, k.name)).collect())
        .unwrap_or_default();
    Ok(facts.iter().map(|f| row(f, &names)).collect())
}

fn row(fact: &StoredFact, names: &[(String, String)]) -> Value {
    let key_name = names
        .iter()
        .find(|(id, _)| *id == fact.key_id)
        .map(|(_, name)| name.as_str());
    json!({
        "id": fact.id,
        "key_id": fact.key_id,
        "key_name": key_name,
        "subject": fact.subject,
        "relation": fact.relation,
        "object": fact.object,
        "request_id": fact.request_id,
        "created": fact.created,
        "seen": fact.seen,
    })
}
