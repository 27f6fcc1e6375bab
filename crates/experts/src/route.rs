//! Profiles and the route table: which expert answers a caller's request.

use std::fmt;
use std::sync::Arc;

use crate::Expert;

/// A routing profile, bound to each API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Profile {
    /// One model, streamed straight through.
    Native,
    /// A reasoning expert; its reasoning streams as thinking blocks.
    Reasoning,
    /// Planner, parallel experts, merger, judge.
    Orchestrated,
}

impl Profile {
    /// All profiles, in display order.
    pub const ALL: [Profile; 3] = [Self::Native, Self::Reasoning, Self::Orchestrated];

    /// The config/CLI name: `moe_native`, …
    pub fn name(self) -> &'static str {
        match self {
            Self::Native => "moe_native",
            Self::Reasoning => "moe_reasoning",
            Self::Orchestrated => "moe_orchestrated",
        }
    }

    /// The model id clients use to pick this profile: `claude-moe-native`, …
    pub fn model_id(self) -> &'static str {
        match self {
            Self::Native => "claude-moe-native",
            Self::Reasoning => "claude-moe-reasoning",
            Self::Orchestrated => "claude-moe-orchestrated",
        }
    }

    /// A human name: `MoE Native`, …
    pub fn title(self) -> &'static str {
        match self {
            Self::Native => "MoE Native",
            Self::Reasoning => "MoE Reasoning",
            Self::Orchestrated => "MoE Orchestrated",
        }
    }

    /// Parses a profile name (`moe_native`) or its model id (`claude-moe-native`).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|profile| {
            text == profile.name()
                || text == profile.model_id()
                || text == profile.name().replace('_', "-")
        })
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which profile a request runs under: the profile's own model id selects it; a haiku-family id
/// (Claude Code's background and utility calls) takes the native fast path; any other id
/// (`claude-opus-4-8`, a `--model` string) runs under the key's active profile. Never "not found".
pub fn profile_for_model(key_profile: Profile, model: &str) -> Profile {
    if let Some(profile) = Profile::parse(model) {
        return profile;
    }
    if model.to_ascii_lowercase().contains("haiku") {
        return Profile::Native;
    }
    key_profile
}

/// The expert chosen for a request.
#[derive(Clone)]
pub struct Route {
    /// The profile the request runs under.
    pub profile: Profile,
    /// The expert that answers.
    pub expert: Arc<dyn Expert>,
}

/// Profiles → experts. A profile without an expert of its own uses the first configured expert,
/// so one expert makes every profile answer.
#[derive(Clone, Default)]
pub struct RouteTable {
    experts: Vec<Arc<dyn Expert>>,
    bound: [Option<Arc<dyn Expert>>; 3],
}

impl RouteTable {
    /// A table over `experts`, with `bindings` naming each profile's expert.
    ///
    /// Errors name a binding whose expert does not exist.
    pub fn new(
        experts: Vec<Arc<dyn Expert>>,
        bindings: &[(Profile, String)],
    ) -> Result<Self, String> {
        let mut table = Self {
            experts,
            bound: Default::default(),
        };
        for (profile, name) in bindings {
            let expert = table
                .experts
                .iter()
                .find(|expert| expert.name() == name)
                .cloned()
                .ok_or_else(|| format!("profile {profile} names unknown expert {name:?}"))?;
            table.bind(*profile, expert);
        }
        Ok(table)
    }

    /// Makes `expert` (one of the table's experts, or a pipeline over them) answer `profile`.
    pub fn bind(&mut self, profile: Profile, expert: Arc<dyn Expert>) {
        self.bound[profile.index()] = Some(expert);
    }

    /// Every expert, in config order.
    pub fn experts(&self) -> &[Arc<dyn Expert>] {
        &self.experts
    }

    /// The expert serving `profile`, if any expert is configured.
    pub fn expert_for(&self, profile: Profile) -> Option<&Arc<dyn Expert>> {
        self.bound[profile.index()]
            .as_ref()
            .or_else(|| self.experts.first())
    }

    /// The route for a caller whose key is bound to `key_profile`, asking for `model`.
    pub fn resolve(&self, key_profile: Profile, model: &str) -> Option<Route> {
        let profile = profile_for_model(key_profile, model);
        self.expert_for(profile).map(|expert| Route {
            profile,
            expert: Arc::clone(expert),
        })
    }

    /// Whether any expert is configured.
    pub fn is_empty(&self) -> bool {
        self.experts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_aliases_select_their_profile() {
        assert_eq!(
            profile_for_model(Profile::Native, "claude-moe-reasoning"),
            Profile::Reasoning
        );
        assert_eq!(
            profile_for_model(Profile::Native, "moe_orchestrated"),
            Profile::Orchestrated
        );
    }

    #[test]
    fn haiku_ids_take_the_native_path_and_others_the_key_profile() {
        assert_eq!(
            profile_for_model(Profile::Reasoning, "claude-haiku-4-5-20251001"),
            Profile::Native
        );
        assert_eq!(
            profile_for_model(Profile::Reasoning, "claude-opus-4-8"),
            Profile::Reasoning
        );
        assert_eq!(
            profile_for_model(Profile::Orchestrated, "qwen2.5-coder:7b"),
            Profile::Orchestrated
        );
    }

    #[test]
    fn parse_accepts_names_and_ids_only() {
        assert_eq!(Profile::parse("moe-native"), Some(Profile::Native));
        assert_eq!(Profile::parse("native"), None);
    }
}
