//! Web search through a SearXNG instance (`GET /search?q=…&format=json`), for the orchestrated
//! profile's research tasks. Off unless `[search] searxng_url` is set: it is egress.

use std::time::Duration;

use serde_json::Value;

/// How long one search may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// A SearXNG instance.
#[derive(Clone)]
pub struct WebSearch {
    client: reqwest::Client,
    base: String,
    max_results: usize,
}

/// One result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Page title.
    pub title: String,
    /// Address.
    pub url: String,
    /// The engine's snippet.
    pub snippet: String,
}

/// What a search found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The results, best first, at most `max_results`.
    pub hits: Vec<Hit>,
    /// Engines that did not answer (SearXNG's `unresponsive_engines`).
    pub unresponsive: Vec<String>,
}

impl WebSearch {
    /// Searches at `base` (the instance's address), keeping `max_results` results.
    pub fn new(base: &str, max_results: usize) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .build()
                .unwrap_or_default(),
            base: base.trim_end_matches('/').to_owned(),
            max_results: max_results.max(1),
        }
    }

    /// The instance's address.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Searches for `query`.
    pub async fn search(&self, query: &str) -> Result<Found, String> {
        let response = self
            .client
            .get(format!("{}/search", self.base))
            .query(&[("q", query), ("format", "json")])
            .send()
            .await
            .map_err(|e| format!("SearXNG at {} is unreachable: {e}", self.base))?;
        let status = response.status();
        if status == reqwest::StatusCode::FORBIDDEN {
            return Err(format!(
                "SearXNG at {} refuses JSON (403): add `json` to `search.formats` in its settings.yml",
                self.base
            ));
        }
        if !status.is_success() {
            return Err(format!("SearXNG at {} answered HTTP {status}", self.base));
        }
        let body: Value = response
            .json()
            .await
            .map_err(|e| format!("SearXNG at {} sent no JSON: {e}", self.base))?;
        Ok(parse(&body, self.max_results))
    }
}

/// The results in a SearXNG JSON answer (`number_of_results` and `unresponsive_engines` may be
/// there or not; entries without a URL are skipped).
pub fn parse(body: &Value, max_results: usize) -> Found {
    let text = |v: &Value, key: &str| {
        v.get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    let hits = body
        .get("results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| !text(r, "url").is_empty())
        .take(max_results)
        .map(|r| Hit {
            title: text(r, "title"),
            url: text(r, "url"),
            snippet: text(r, "content"),
        })
        .collect();
    // Each entry is `[engine, reason]` (or a plain name in older versions).
    let unresponsive = body
        .get("unresponsive_engines")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| match e {
            Value::Array(pair) => pair.first().and_then(Value::as_str).map(str::to_owned),
            Value::String(name) => Some(name.clone()),
            _ => None,
        })
        .collect();
    Found { hits, unresponsive }
}

/// `hits` as context for an expert: numbered, with their addresses.
pub fn as_context(hits: &[Hit]) -> String {
    let mut out = String::from("Web results:\n");
    for (n, hit) in hits.iter().enumerate() {
        out.push_str(&format!(
            "{}. {} — {} ({})\n",
            n + 1,
            hit.title,
            hit.snippet,
            hit.url
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn results_with_and_without_counts_and_unresponsive_engines() {
        let body = json!({
            "query": "rust", "number_of_results": 0,
            "results": [
                {"title": "Rust", "url": "https://www.rust-lang.org/", "content": "A language", "engine": "duckduckgo"},
                {"title": "no url", "content": "skipped"},
                {"title": "Book", "url": "https://doc.rust-lang.org/book/", "content": ""}
            ],
            "unresponsive_engines": [["google", "timeout"], "bing"]
        });
        let found = parse(&body, 5);
        assert_eq!(found.hits.len(), 2);
        assert_eq!(found.hits[0].url, "https://www.rust-lang.org/");
        assert_eq!(found.unresponsive, ["google", "bing"]);
        assert_eq!(parse(&body, 1).hits.len(), 1);
        let bare = parse(&json!({"results": []}), 5);
        assert!(bare.hits.is_empty() && bare.unresponsive.is_empty());
        assert!(
            as_context(&found.hits).contains("1. Rust — A language (https://www.rust-lang.org/)")
        );
    }

    /// A local server shaped like SearXNG: JSON on, then JSON off (403).
    #[tokio::test]
    async fn a_real_http_round_trip_and_the_403_of_an_instance_without_json() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let json_on = Arc::new(AtomicBool::new(true));
        let flag = Arc::clone(&json_on);
        let app = axum::Router::new().route(
            "/search",
            axum::routing::get(
                move |axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>| {
                    let on = flag.load(Ordering::SeqCst);
                    async move {
                        if !on || q.get("format").map(String::as_str) != Some("json") {
                            return (axum::http::StatusCode::FORBIDDEN, "Forbidden".to_owned());
                        }
                        let query = q.get("q").cloned().unwrap_or_default();
                        let body = json!({"query": query, "results": [
                            {"title": format!("About {query}"), "url": "https://example.org/a", "content": "snippet"}
                        ]});
                        (axum::http::StatusCode::OK, body.to_string())
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let search = WebSearch::new(&format!("http://{addr}/"), 3);
        let found = search.search("copper uses").await.unwrap();
        assert_eq!(found.hits[0].title, "About copper uses");
        json_on.store(false, Ordering::SeqCst);
        let error = search.search("x").await.unwrap_err();
        assert!(
            error.contains("refuses JSON (403)") && error.contains("settings.yml"),
            "{error}"
        );
        let gone = WebSearch::new("http://127.0.0.1:1", 3)
            .search("x")
            .await
            .unwrap_err();
        assert!(gone.contains("unreachable"), "{gone}");
    }
}
