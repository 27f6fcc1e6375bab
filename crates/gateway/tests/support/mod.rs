pub mod fake;

use std::sync::Arc;

use moe_sovereign_experts::{Expert, Profile, RouteTable};
use moe_sovereign_gateway::admin::Admin;
use moe_sovereign_gateway::{Authenticator, Caller, GatewayState, Routes, Settings};
use moe_sovereign_telemetry::Hub;
use tokio_util::sync::CancellationToken;

/// The one key the test authenticator accepts.
pub const KEY: &str = "moe-sk-test";

/// Accepts [`KEY`] as `key_1` ("laptop"), profile `moe_native`.
pub struct OneKey;

impl Authenticator for OneKey {
    fn authenticate(&self, key: &str) -> Option<Caller> {
        (key == KEY).then(|| Caller {
            key_id: "key_1".into(),
            key_name: "laptop".into(),
            profile: Profile::Native,
        })
    }
}

/// A gateway over one scripted `expert`, [`OneKey`] auth, `settings`, and the dashboard when
/// `admin` is given.
pub fn state(
    expert: fake::ScriptedExpert,
    settings: Settings,
    admin: Option<Admin>,
) -> GatewayState {
    let experts: Vec<Arc<dyn Expert>> = vec![Arc::new(expert)];
    GatewayState {
        routes: Routes::new(RouteTable::new(experts, &[]).unwrap()),
        auth: Arc::new(OneKey),
        settings: Arc::new(settings),
        shutdown: CancellationToken::new(),
        hub: Hub::new(),
        in_flight: Arc::default(),
        admin: admin.map(Arc::new),
    }
}
