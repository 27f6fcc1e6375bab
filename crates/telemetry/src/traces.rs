//! One record per request: who (the key's id and name, never its value), which profile, expert
//! and model, the token counts `usage` reported, timings and the outcome. Never any prompt or
//! answer text.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// How many traces are kept.
pub const CAPACITY: usize = 1000;

/// A finished (or failed, or cancelled) request.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Trace {
    /// Sequence number, assigned when recorded.
    pub id: u64,
    /// When the request arrived, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The route (`/v1/messages`, `/v1/messages/count_tokens`).
    pub endpoint: String,
    /// The key's id.
    pub key_id: String,
    /// The key's name.
    pub key_name: String,
    /// The profile it ran under.
    pub profile: String,
    /// The expert that answered (empty when none was reached).
    pub expert: String,
    /// The model id the client asked for.
    pub model: String,
    /// Whether the answer was streamed.
    pub stream: bool,
    /// Input tokens, as reported in `usage`.
    pub input_tokens: u64,
    /// Output tokens, as reported in `usage`.
    pub output_tokens: u64,
    /// Prompt tokens served from the expert's prefix cache, where the expert says.
    pub cache_read_tokens: u64,
    /// Time to the first answer token (text, thinking or tool input), in milliseconds.
    pub ttft_ms: Option<u64>,
    /// Time until the answer ended, in milliseconds.
    pub duration_ms: u64,
    /// Output tokens per second of generation (after the first token).
    pub tokens_per_s: Option<f64>,
    /// The HTTP status (200 for a stream that started, whatever happened later).
    pub status: u16,
    /// The error type when it failed (`overloaded_error`, …), `cancelled` when the client left.
    pub error_type: Option<String>,
    /// Why the answer stopped (`end_turn`, `max_tokens`, `tool_use`, …).
    pub stop_reason: Option<String>,
    /// What the profile's stages did, in order (experts skipped, sub-calls).
    pub steps: Vec<TraceStep>,
}

/// One stage of a request's pipeline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TraceStep {
    /// `fallback`, `answer`, …
    pub stage: String,
    /// The expert it used.
    pub expert: String,
    /// What happened.
    pub outcome: String,
    /// How long it took, in milliseconds.
    pub ms: u64,
}

impl Trace {
    /// Output tokens per second between the first token and the end.
    pub fn generation_rate(
        output_tokens: u64,
        ttft_ms: Option<u64>,
        duration_ms: u64,
    ) -> Option<f64> {
        let ttft = ttft_ms?;
        let generating = duration_ms.saturating_sub(ttft);
        (output_tokens > 1 && generating > 0)
            .then(|| (output_tokens - 1) as f64 * 1000.0 / generating as f64)
    }

    /// Whether it ended without an error.
    pub fn ok(&self) -> bool {
        self.error_type.is_none() && self.status < 400
    }
}

/// What `/api/requests` can filter by; empty fields match everything.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TraceFilter {
    /// A key id or name.
    #[serde(default)]
    pub key: Option<String>,
    /// A profile name.
    #[serde(default)]
    pub profile: Option<String>,
    /// `ok`, `error`, or a status code.
    #[serde(default)]
    pub status: Option<String>,
}

impl TraceFilter {
    fn matches(&self, trace: &Trace) -> bool {
        fn some(field: &Option<String>) -> Option<&str> {
            field.as_deref().filter(|v| !v.is_empty())
        }
        if let Some(key) = some(&self.key)
            && trace.key_id != key
            && trace.key_name != key
        {
            return false;
        }
        if let Some(profile) = some(&self.profile)
            && trace.profile != profile
        {
            return false;
        }
        match some(&self.status) {
            None => true,
            Some("ok") => trace.ok(),
            Some("error") => !trace.ok(),
            Some(code) => code.parse::<u16>().is_ok_and(|c| c == trace.status),
        }
    }
}

/// The last [`CAPACITY`] traces.
#[derive(Debug)]
pub struct Traces {
    capacity: usize,
    next_id: AtomicU64,
    traces: Mutex<VecDeque<Trace>>,
}

impl Traces {
    /// Keeps the last `capacity`.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            next_id: AtomicU64::new(1),
            traces: Mutex::new(VecDeque::with_capacity(capacity)),
        }
    }

    /// Stores a trace (numbering it) and returns the stored copy.
    pub fn push(&self, mut trace: Trace) -> Trace {
        trace.id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut traces) = self.traces.lock() {
            if traces.len() == self.capacity {
                traces.pop_front();
            }
            traces.push_back(trace.clone());
        }
        trace
    }

    /// Matching traces, newest first, at most `limit`.
    pub fn list(&self, filter: &TraceFilter, limit: usize) -> Vec<Trace> {
        self.traces.lock().map_or_else(
            |_| Vec::new(),
            |traces| {
                traces
                    .iter()
                    .rev()
                    .filter(|t| filter.matches(t))
                    .take(limit)
                    .cloned()
                    .collect()
            },
        )
    }

    /// When each key was last used (key id → milliseconds), from the traces kept.
    pub fn last_used(&self, key_id: &str) -> Option<u64> {
        let traces = self.traces.lock().ok()?;
        traces
            .iter()
            .rev()
            .find(|t| t.key_id == key_id)
            .map(|t| t.at_ms)
    }

    /// Requests that arrived at or after `since_ms`, and the output tokens they produced.
    pub fn since(&self, since_ms: u64) -> (usize, u64) {
        self.traces.lock().map_or((0, 0), |traces| {
            traces
                .iter()
                .filter(|t| t.at_ms >= since_ms)
                .fold((0, 0), |(n, tokens), t| (n + 1, tokens + t.output_tokens))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(key: &str, profile: &str, status: u16) -> Trace {
        Trace {
            key_id: key.into(),
            key_name: format!("{key}-name"),
            profile: profile.into(),
            status,
            ..Trace::default()
        }
    }

    #[test]
    fn keeps_the_newest_and_lists_them_first() {
        let traces = Traces::new(3);
        for i in 0..5 {
            traces.push(trace(&format!("k{i}"), "moe_native", 200));
        }
        let ids: Vec<u64> = traces
            .list(&TraceFilter::default(), 10)
            .iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(ids, vec![5, 4, 3]);
        assert_eq!(traces.list(&TraceFilter::default(), 1).len(), 1);
    }

    #[test]
    fn filters_by_key_id_or_name_profile_and_status() {
        let traces = Traces::new(10);
        traces.push(trace("a", "moe_native", 200));
        traces.push(trace("b", "moe_reasoning", 529));
        let mut failed = trace("a", "moe_reasoning", 200);
        failed.error_type = Some("api_error".into());
        traces.push(failed);
        let count = |filter: TraceFilter| traces.list(&filter, 10).len();
        let f = |key: Option<&str>, profile: Option<&str>, status: Option<&str>| TraceFilter {
            key: key.map(Into::into),
            profile: profile.map(Into::into),
            status: status.map(Into::into),
        };
        assert_eq!(count(f(Some("a"), None, None)), 2);
        assert_eq!(count(f(Some("b-name"), None, None)), 1);
        assert_eq!(count(f(None, Some("moe_reasoning"), None)), 2);
        assert_eq!(count(f(None, None, Some("ok"))), 1);
        assert_eq!(count(f(None, None, Some("error"))), 2);
        assert_eq!(count(f(None, None, Some("529"))), 1);
        assert_eq!(count(f(Some(""), Some(""), Some(""))), 3);
    }

    #[test]
    fn generation_rate_counts_tokens_after_the_first() {
        assert_eq!(Trace::generation_rate(11, Some(100), 1100), Some(10.0));
        assert_eq!(Trace::generation_rate(1, Some(100), 1100), None);
        assert_eq!(Trace::generation_rate(5, None, 1100), None);
    }
}
