//! End-to-end suite: the built `moe-sovereign` binary, real clients, fake and real upstreams.
//! Needs `scripts/test-deps.sh` (clients, model) and a Secret Service session (the README's test
//! command provides both).

#![expect(clippy::unwrap_used, reason = "tests")]

mod cli;
mod clients;
mod dashboard;
mod faults;
mod http;
mod knowledge;
mod llama_cpp;
mod local;
mod mcp;
mod package;
mod profiles;
mod pull;
mod remote;
mod routes;
mod tray;
mod wiring;

use moe_sovereign_e2e::{FakeUpstream, Flavor, Gateway};

/// The upstream key the fake requires; the gateway reads it from `env:FAKE_UPSTREAM_KEY`.
pub const UPSTREAM_KEY: &str = "upstream-secret-123";

/// config.toml with one expert of `flavor` at `url`, plus `extra` lines.
pub fn config(flavor: Flavor, url: &str, extra: &str) -> String {
    let kind = match flavor {
        Flavor::OpenAi => "openai",
        Flavor::Anthropic => "anthropic",
    };
    format!(
        "{extra}\n[[experts]]\nname = \"upstream\"\nkind = \"{kind}\"\nbase_url = \"{url}\"\napi_key = \"env:FAKE_UPSTREAM_KEY\"\n\n[profiles.moe_native]\nexpert = \"upstream\"\n"
    )
}

/// A fake upstream of `flavor` and a gateway in front of it.
pub fn stack(flavor: Flavor, extra: &str) -> (FakeUpstream, Gateway) {
    let upstream = FakeUpstream::start(Some(UPSTREAM_KEY));
    let (home, key) = Gateway::home(&config(flavor, &upstream.url, extra), "moe_native");
    let gateway = Gateway::start_in(home, key, &[("FAKE_UPSTREAM_KEY", UPSTREAM_KEY)]);
    (upstream, gateway)
}
