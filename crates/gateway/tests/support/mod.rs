pub mod fake;

use moe_sovereign_experts::Profile;
use moe_sovereign_gateway::{Authenticator, Caller};

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
