//! The routing profiles as stages over the [`Expert`](moe_sovereign_experts::Expert) trait.
//! Each stage is itself an expert, so the gateway still sees one expert stream per request and
//! JSON, SSE, cancellation, traces and `count_tokens` work unchanged. What a stage did goes into
//! the request's trace as [`Step`](moe_sovereign_experts::Step) events, never to the client.
//!
//! - [`fallback`]: a profile's experts in order; the next answers when one cannot, before the
//!   first byte of the answer;
//! - [`reasoning`]: `moe_reasoning` — reasoning streamed as thinking within its budget, then
//!   the answer;
//! - [`orchestrated`]: `moe_orchestrated` — planner, experts in parallel, merger, judge;
//! - [`call`]: one sub-call of a stage, folded into a reply;
//! - [`search`]: web search through a SearXNG instance (off unless configured);
//! - [`tools`]: MCP tools offered to sub-calls, run by the gateway;
//! - [`knowledge`]: the per-key knowledge graph, recalled before planning and fed after.

pub mod call;
pub mod fallback;
pub mod knowledge;
pub mod orchestrated;
pub mod reasoning;
pub mod search;
#[cfg(test)]
mod testing;
pub mod tools;

pub use fallback::Fallback;
pub use orchestrated::{Member, Orchestrated};
pub use reasoning::Reasoning;
