//! Shared state of the gateway.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use moe_sovereign_experts::signature::Signer;
use moe_sovereign_experts::{Profile, RouteTable};
use moe_sovereign_telemetry::Hub;
use tokio_util::sync::CancellationToken;

use crate::admin::Admin;
use crate::trace::InFlight;

/// Who is calling: the key's id and the profile it is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key id (never the key).
    pub key_id: String,
    /// The key's name (for traces).
    pub key_name: String,
    /// The key's active profile.
    pub profile: Profile,
}

/// Turns a presented API key into a caller. Implemented over the key store by `runtime`.
pub trait Authenticator: Send + Sync {
    /// The caller owning `key`, if `key` is valid.
    fn authenticate(&self, key: &str) -> Option<Caller>;
}

/// Tunables.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The port we listen on (Host and Origin checks need it).
    pub port: u16,
    /// Skip the Host check (explicit `--allow-remote` only; auth stays on).
    pub allow_any_host: bool,
    /// Largest accepted body.
    pub max_body_bytes: usize,
    /// A `ping` goes out when the expert has been quiet this long.
    pub ping_interval: Duration,
    /// How long to wait for the expert's first event before committing to a 200.
    pub first_event_timeout: Duration,
    /// Signs the thinking we produce (the install's secret).
    pub signer: Signer,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            port: 0,
            allow_any_host: false,
            max_body_bytes: 32 * 1024 * 1024,
            ping_interval: Duration::from_secs(10),
            first_event_timeout: Duration::from_secs(5),
            signer: Signer::random(),
        }
    }
}

/// The route table in force. Readers take the current table; a change swaps in a new one, and
/// requests already running keep the experts they started with.
#[derive(Clone)]
pub struct Routes(Arc<RwLock<Arc<RouteTable>>>);

impl Routes {
    /// Routes over `table`.
    pub fn new(table: RouteTable) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(table))))
    }

    /// The table in force now.
    pub fn current(&self) -> Arc<RouteTable> {
        match self.0.read() {
            Ok(table) => Arc::clone(&table),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Puts `table` in force for every request from now on.
    pub fn replace(&self, table: RouteTable) {
        let table = Arc::new(table);
        match self.0.write() {
            Ok(mut current) => *current = table,
            Err(poisoned) => *poisoned.into_inner() = table,
        }
    }
}

/// Cheap to clone; one per server.
#[derive(Clone)]
pub struct GatewayState {
    /// Profiles → experts; replaced whole when the dashboard changes which expert a profile
    /// uses.
    pub routes: Routes,
    /// Key checks.
    pub auth: Arc<dyn Authenticator>,
    /// Tunables.
    pub settings: Arc<Settings>,
    /// Cancelled at shutdown: open streams end with an error event.
    pub shutdown: CancellationToken,
    /// Telemetry and request traces.
    pub hub: Arc<Hub>,
    /// Requests running now.
    pub in_flight: Arc<InFlight>,
    /// The dashboard and its API; `None` serves no `/ui` or `/api` at all (every admin path is
    /// then refused like any unknown route).
    pub admin: Option<Arc<Admin>>,
}
