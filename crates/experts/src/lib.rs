//! What an expert is, and the experts that live elsewhere.
//!
//! An expert answers one Anthropic-shaped request ([`ExpertRequest`]) with a stream of neutral
//! [`ExpertEvent`]s. The gateway turns that stream into SSE or a JSON message; this crate never
//! touches HTTP server types.
//!
//! Layout:
//! - [`event`]: [`ExpertEvent`], [`ExpertError`], the stream type and its invariants;
//! - [`limit`]: admission in front of any expert (running limit, bounded queue, supersession);
//! - [`route`]: profiles and the [`RouteTable`] (profile + model id → expert);
//! - [`context`]: upstream context-overflow errors reworded the way Claude Code parses them;
//! - [`sse`]: a small incremental parser for upstream `text/event-stream` bodies;
//! - [`signature`]: HMAC signatures on the thinking we produce;
//! - [`think`]: a reasoning model's inline `<think>…</think>` split out as thinking, live;
//! - [`anthropic`]: forwards to another Anthropic-compatible gateway;
//! - [`openai`]: any OpenAI-compatible `/v1/chat/completions` server (vLLM, llama.cpp, Ollama).

pub mod anthropic;
pub mod context;
pub mod event;
pub mod limit;
pub mod openai;
pub mod route;
pub mod signature;
pub mod sse;
pub mod think;
mod upstream;

pub use upstream::{Yielder, async_stream as generator};

use std::fmt;

pub use event::{ExpertError, ExpertEvent, ExpertStream, Step, UsageUpdate};
pub use route::{Profile, Route, RouteTable};

use futures::future::BoxFuture;
use moe_sovereign_anthropic::MessagesRequest;

/// One request for an expert: the (normalised) Anthropic body plus the headers worth forwarding.
#[derive(Debug, Clone)]
pub struct ExpertRequest {
    /// The body; the gateway has already removed Claude Code's billing block.
    pub body: MessagesRequest,
    /// `anthropic-version` as the client sent it.
    pub anthropic_version: Option<String>,
    /// `anthropic-beta` as the client sent it.
    pub anthropic_beta: Option<String>,
    /// The client's session (`X-Claude-Code-Session-Id`): a newer request of the same session
    /// supersedes an older one still running.
    pub session: Option<String>,
    /// The caller's key id (`keys list`), for what is kept per key (the knowledge graph).
    pub key_id: Option<String>,
    /// This request's message id (`msg_…`), recorded as the provenance of what it leaves.
    pub request_id: Option<String>,
}

/// Something that answers requests.
///
/// `stream` resolves once the expert has accepted the request (an upstream answered 200, a local
/// engine queued it); failures before that are plain errors that become HTTP errors. Dropping the
/// returned stream cancels the work.
pub trait Expert: Send + Sync {
    /// The expert's name from config.
    fn name(&self) -> &str;
    /// What serves it, for display (`display_name` of `/v1/models`).
    fn model_label(&self) -> String;
    /// Starts answering.
    fn stream(&self, request: ExpertRequest) -> BoxFuture<'_, Result<ExpertStream, ExpertError>>;
    /// Counts the input tokens of `request` as this expert would see them.
    fn count_tokens(&self, request: ExpertRequest) -> BoxFuture<'_, Result<u64, ExpertError>>;
    /// Requests waiting for their turn in front of this expert (admission control's queue).
    fn waiting(&self) -> usize {
        0
    }
    /// Gets ready to answer at once (a local expert loads its model); remote experts are ready.
    fn warm(&self) -> BoxFuture<'_, Result<(), ExpertError>> {
        Box::pin(async { Ok(()) })
    }
}

/// A secret value (an upstream API key) that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The plaintext, for the one place that needs it (a request header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A rough token count (bytes / 4 of everything the model reads: system, messages, tools), for
/// experts that have no tokenizer to ask. Local experts count exactly.
pub fn estimate_tokens(body: &MessagesRequest) -> u64 {
    let mut bytes = 0usize;
    if let Some(system) = &body.system {
        bytes += system.text().len();
    }
    for message in &body.messages {
        bytes += serde_json::to_vec(&message.content).map_or(0, |v| v.len());
    }
    if let Some(tools) = &body.tools {
        bytes += serde_json::to_vec(tools).map_or(0, |v| v.len());
    }
    (bytes as u64).div_ceil(4)
}

/// A random id with a prefix, e.g. `toolu_3f2a…`.
pub fn random_id(prefix: &str) -> String {
    let mut bytes = [0u8; 12];
    // getrandom only fails on platforms without an entropy source; a zero id is still unique
    // enough for a tool-call id within one message.
    let _ = getrandom::fill(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}
