//! The neutral event stream every expert produces.
//!
//! Invariants (checked by the gateway's state machine and the fake expert's tests):
//! - at most one [`ExpertEvent::Stop`], and nothing after it; a stream that ends without one
//!   ended early (an error);
//! - text, thinking and tool input arrive as deltas; a change of kind starts a new content block,
//!   [`ExpertEvent::ToolUseStart`] always starts one, [`ExpertEvent::BlockEnd`] closes the open one;
//! - usage may arrive at any time, often only at the end; later values replace earlier ones.

use futures::stream::BoxStream;
use moe_sovereign_anthropic::StopReason;

/// The stream an expert returns.
pub type ExpertStream = BoxStream<'static, Result<ExpertEvent, ExpertError>>;

/// One thing an expert says.
#[derive(Debug, Clone, PartialEq)]
pub enum ExpertEvent {
    /// Answer text.
    Text(String),
    /// Visible reasoning.
    Thinking(String),
    /// The signature of the thinking block just streamed.
    ThinkingSignature(String),
    /// A redacted thinking block (opaque data).
    RedactedThinking(String),
    /// A tool call begins.
    ToolUseStart {
        /// Call id (`toolu_…`).
        id: String,
        /// Tool name.
        name: String,
    },
    /// A fragment of the current tool call's JSON input.
    ToolInputDelta(String),
    /// The open block is complete.
    BlockEnd,
    /// Token counts so far.
    Usage(UsageUpdate),
    /// What a stage of the pipeline did (an expert skipped, a sub-call made), for the
    /// request's trace; never sent to the client.
    Step(Step),
    /// The answer is complete.
    Stop {
        /// Why.
        reason: StopReason,
        /// The matching stop sequence, for [`StopReason::StopSequence`].
        stop_sequence: Option<String>,
    },
}

/// One entry of a request's trace: which expert a stage used and how it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The stage: `fallback` (an expert skipped before answering), `answer`, …
    pub stage: String,
    /// The expert it used.
    pub expert: String,
    /// What happened, in a few words.
    pub outcome: String,
    /// How long it took, in milliseconds.
    pub ms: u64,
}

/// Token counts; `None` leaves a number as it was.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageUpdate {
    /// Prompt tokens (not from a cache).
    pub input_tokens: Option<u64>,
    /// Generated tokens.
    pub output_tokens: Option<u64>,
    /// Prompt tokens read from a cache.
    pub cache_read_input_tokens: Option<u64>,
    /// Prompt tokens written to a cache.
    pub cache_creation_input_tokens: Option<u64>,
}

/// Why an expert could not answer. The gateway maps each variant to one HTTP status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExpertError {
    /// The request cannot be served as sent (400).
    #[error("{0}")]
    BadRequest(String),
    /// The request is too large for the expert (413).
    #[error("{0}")]
    TooLarge(String),
    /// The upstream refused *our* stored credential (500, never 401: a 401 would make the client
    /// blame its own key).
    #[error("{0}")]
    UpstreamAuth(String),
    /// The upstream asks us to slow down (429).
    #[error("{message}")]
    RateLimited {
        /// What happened.
        message: String,
        /// Seconds to wait, when known.
        retry_after: Option<u64>,
    },
    /// Busy, loading, unreachable or shutting down: retry later (529).
    #[error("{message}")]
    Overloaded {
        /// What happened.
        message: String,
        /// Seconds to wait, when known.
        retry_after: Option<u64>,
    },
    /// The upstream failed or broke the protocol (500).
    #[error("{0}")]
    Upstream(String),
}

impl ExpertError {
    /// A 529 with no retry hint.
    pub fn overloaded(message: impl Into<String>) -> Self {
        Self::Overloaded {
            message: message.into(),
            retry_after: None,
        }
    }
}
