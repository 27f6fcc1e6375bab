//! The end-to-end harness: start the real `moe-sovereign` binary with a scratch home, issue a
//! key through its own CLI (into the real keychain the test session provides), and run the real
//! clients against it. Also the fake upstreams (OpenAI- and Anthropic-compatible) that stand
//! behind the gateway, reused by `bench/gateway-overhead`.
//!
//! Nothing here knows the gateway's internal types: it speaks HTTP and JSON on purpose.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test harness: fail loudly"
)]

pub mod desktop;
pub mod fake_hub;
pub mod fake_upstream;
pub mod gateway;
pub mod tools;

pub use fake_upstream::{FakeUpstream, Flavor};
pub use gateway::Gateway;
