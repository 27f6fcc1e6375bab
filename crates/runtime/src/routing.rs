//! Experts and the route table, built from config — at start, and again when the dashboard
//! changes which expert a profile uses (the new table goes into force at once; experts whose
//! config did not change are kept, with their loaded models and queues).

use std::sync::{Arc, Mutex, RwLock};

use moe_sovereign_experts::anthropic::AnthropicExpert;
use moe_sovereign_experts::limit::Limited;
use moe_sovereign_experts::openai::OpenAiExpert;
use moe_sovereign_experts::signature::Signer;
use moe_sovereign_experts::{Expert, Profile, RouteTable, Secret};
use moe_sovereign_gateway::Routes;
use moe_sovereign_graph::Graph;
use moe_sovereign_keys::SecretStore;
use moe_sovereign_local::{LocalExpert, Registry, Residency, ResidencyPolicy};
use moe_sovereign_mcp::Mcp;
use moe_sovereign_pipeline::orchestrated::DEADLINE;
use moe_sovereign_pipeline::search::WebSearch;
use moe_sovereign_pipeline::{Fallback, Member, Orchestrated, Reasoning};

use crate::config::{
    Config, ConfigError, ExpertConfig, ExpertKind, LocalTuning, Problem, SecretRef,
};
use crate::{Home, RuntimeError};

/// The knowledge graph in the home folder; without it (a file that cannot be opened, said in
/// the log) `moe_orchestrated` answers all the same, remembering nothing.
fn open_graph(home: &Home) -> Option<Arc<Graph>> {
    match Graph::open(&home.graph_path()) {
        Ok(graph) => Some(Arc::new(graph)),
        Err(error) => {
            tracing::warn!(%error, "knowledge graph unavailable");
            None
        }
    }
}

/// Requests an expert runs at once (local experts batch them), and how many may wait beyond
/// that before new ones get 529 + `retry-after`.
const MAX_RUNNING: usize = 8;
const MAX_WAITING: usize = 32;

/// An expert and the config it was built from (`None`: the implicit first registered model).
type Built = (Option<ExpertConfig>, Arc<dyn Expert>);

/// The config in force, its experts, and (once serving) the gateway's routes.
pub struct Routing {
    home: Home,
    store: SecretStore,
    registry: Registry,
    residency: Arc<Residency>,
    config: RwLock<Config>,
    experts: Mutex<Vec<Built>>,
    routes: Option<Routes>,
    signer: Signer,
    mcp: Mcp,
    graph: Option<Arc<Graph>>,
}

impl Routing {
    /// Builds every expert of `config` and the route table; every problem at once.
    pub fn new(home: &Home, config: &Config) -> Result<(Self, RouteTable), RuntimeError> {
        let signer = Signer::new(home.thinking_key()?);
        let routing = Self {
            home: home.clone(),
            store: home.secret_store(config.secret_store),
            registry: Registry::new(home.dir()),
            residency: Residency::new(residency_policy(&config.local)),
            config: RwLock::new(config.clone()),
            experts: Mutex::new(Vec::new()),
            routes: None,
            signer,
            mcp: Mcp::new(config.mcp_servers.clone()),
            graph: config.graph.then(|| open_graph(home)).flatten(),
        };
        let (experts, table) = routing.build(config, &[]).map_err(|problems| {
            RuntimeError::Config(ConfigError::Invalid {
                path: config
                    .origin
                    .path
                    .clone()
                    .unwrap_or_else(|| home.config_path()),
                problems,
            })
        })?;
        if let Ok(mut built) = routing.experts.lock() {
            *built = experts;
        }
        Ok((routing, table))
    }

    /// The same routing, now driving `routes` (what [`Routing::apply`] replaces).
    pub fn serving(mut self, routes: Routes) -> Self {
        self.routes = Some(routes);
        self
    }

    /// The knowledge graph `moe_orchestrated` learns into (`None` when off or unavailable).
    pub fn graph(&self) -> Option<Arc<Graph>> {
        self.graph.clone()
    }

    /// The MCP servers of the config (started on first use).
    pub fn mcp(&self) -> &Mcp {
        &self.mcp
    }

    /// What signs the thinking we produce, and verifies it when it comes back.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// How many experts there are.
    pub fn expert_count(&self) -> usize {
        self.experts.lock().map_or(0, |e| e.len())
    }

    /// The config in force.
    pub fn config(&self) -> Config {
        match self.config.read() {
            Ok(config) => config.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The home folder.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// Which models are loaded.
    pub fn residency(&self) -> &Arc<Residency> {
        &self.residency
    }

    /// The experts that run the registered model `model` on this machine.
    pub fn local_experts_of(&self, model: &str) -> Vec<Arc<dyn Expert>> {
        let Ok(experts) = self.experts.lock() else {
            return Vec::new();
        };
        experts
            .iter()
            .filter(|(config, expert)| match config {
                None => expert.name() == model,
                Some(c) => c.kind == ExpertKind::Local && c.model.as_deref() == Some(model),
            })
            .map(|(_, expert)| Arc::clone(expert))
            .collect()
    }

    /// Puts `config` in force: experts rebuilt where their entry changed, a new route table.
    /// Nothing changes when any expert cannot be built.
    pub fn apply(&self, config: Config) -> Result<(), String> {
        let previous = self.experts.lock().map(|e| e.clone()).unwrap_or_default();
        let (experts, table) = self.build(&config, &previous).map_err(|problems| {
            problems
                .into_iter()
                .map(|p| p.message)
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        if let Some(routes) = &self.routes {
            routes.replace(table);
        }
        if let Ok(mut built) = self.experts.lock() {
            *built = experts;
        }
        if let Ok(mut current) = self.config.write() {
            *current = config;
        }
        Ok(())
    }

    fn build(
        &self,
        config: &Config,
        previous: &[Built],
    ) -> Result<(Vec<Built>, RouteTable), Vec<Problem>> {
        let mut problems = Vec::new();
        let mut experts: Vec<Built> = Vec::new();
        if config.experts.is_empty() {
            // No experts configured: the first registered model serves every profile.
            match self.registry.list() {
                Ok(models) => {
                    if let Some(entry) = models.into_iter().next() {
                        let name = entry.name.clone();
                        let expert = LocalExpert::new(&name, entry, &self.residency);
                        experts.push((None, limited(Arc::new(expert))));
                    }
                }
                Err(error) => problems.push(problem(error.to_string())),
            }
        }
        for entry in &config.experts {
            let kept = previous
                .iter()
                .find(|(built, _)| built.as_ref() == Some(entry))
                .map(|(_, expert)| Arc::clone(expert));
            match kept.map_or_else(|| self.build_one(entry), Ok) {
                Ok(expert) => experts.push((Some(entry.clone()), expert)),
                Err(message) => problems.push(config.origin.expert_problem(&entry.name, message)),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut table = RouteTable::new(experts.iter().map(|(_, e)| Arc::clone(e)).collect(), &[])
            .map_err(|message| vec![problem(message)])?;
        for profile in Profile::ALL {
            let names = config
                .profiles
                .iter()
                .find(|(p, _)| *p == profile)
                .map(|(_, names)| names.clone())
                .unwrap_or_default();
            // A profile without experts of its own uses the first one.
            let mut chosen: Vec<Built> = Vec::new();
            for name in &names {
                match experts.iter().find(|(_, e)| e.name() == name) {
                    Some(built) => chosen.push(built.clone()),
                    None => problems.push(problem(format!(
                        "profile {profile} names unknown expert {name:?}"
                    ))),
                }
            }
            if chosen.is_empty() {
                chosen.extend(experts.first().cloned());
            }
            if let Some(expert) = self.profile_expert(profile, &chosen, &experts, config) {
                table.bind(profile, expert);
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok((experts, table))
    }

    /// The pipeline answering `profile` over its experts `chosen` (in order).
    fn profile_expert(
        &self,
        profile: Profile,
        chosen: &[Built],
        all: &[Built],
        config: &Config,
    ) -> Option<Arc<dyn Expert>> {
        let base: Arc<dyn Expert> = match chosen {
            [] => return None,
            [(_, one)] => Arc::clone(one),
            many => Arc::new(Fallback::new(
                many.iter().map(|(_, e)| Arc::clone(e)).collect(),
            )),
        };
        Some(match profile {
            Profile::Reasoning => {
                // Its own reasoning channel only when every expert of the list has one.
                let native = chosen.iter().all(|(config, _)| {
                    config
                        .as_ref()
                        .is_some_and(|c| c.tags.iter().any(|t| t == "reasoning"))
                });
                Arc::new(Reasoning::new(base, native, self.signer.clone()))
            }
            Profile::Orchestrated => {
                let members = all
                    .iter()
                    .filter_map(|(config, expert)| {
                        let tags = config.as_ref()?.tags.clone();
                        (!tags.is_empty()).then(|| Member {
                            expert: Arc::clone(expert),
                            tags,
                        })
                    })
                    .collect();
                let answerer = config
                    .tool_expert
                    .as_ref()
                    .and_then(|name| all.iter().find(|(_, e)| e.name() == name))
                    .map_or_else(|| Arc::clone(&base), |(_, e)| Arc::clone(e));
                let search = config
                    .search
                    .as_ref()
                    .map(|s| WebSearch::new(&s.searxng_url, s.max_results));
                Arc::new(
                    Orchestrated::new(base, members, answerer, DEADLINE)
                        .with_search(search)
                        .with_mcp(Some(self.mcp.clone()))
                        .with_graph(self.graph.clone()),
                )
            }
            Profile::Native => base,
        })
    }

    /// One expert from its config entry, behind admission control.
    fn build_one(&self, expert: &ExpertConfig) -> Result<Arc<dyn Expert>, String> {
        let api_key = match &expert.api_key {
            None => None,
            Some(SecretRef::Env(var)) => match std::env::var(var) {
                Ok(value) if !value.is_empty() => Some(Secret::new(value)),
                _ => {
                    return Err(format!(
                        "expert {:?}: environment variable {var} (its api_key) is not set",
                        expert.name
                    ));
                }
            },
            Some(SecretRef::Keychain(name)) => match self.store.get(name) {
                Ok(value) => Some(Secret::new(value)),
                Err(error) => {
                    return Err(format!(
                        "expert {:?}: api_key keychain:{name}: {error}",
                        expert.name
                    ));
                }
            },
        };
        let model = expert.model.clone();
        let built: Arc<dyn Expert> = match expert.kind {
            ExpertKind::Local => {
                let entry = self
                    .registry
                    .get(model.as_deref().unwrap_or_default())
                    .map_err(|error| format!("expert {:?}: {error}", expert.name))?;
                Arc::new(LocalExpert::new(&expert.name, entry, &self.residency))
            }
            ExpertKind::Anthropic => Arc::new(AnthropicExpert::new(
                &expert.name,
                &expert.base_url,
                model,
                api_key,
            )),
            ExpertKind::OpenAi => Arc::new(OpenAiExpert::new(
                &expert.name,
                &expert.base_url,
                model,
                api_key,
            )),
        };
        Ok(limited(built))
    }
}

fn limited(expert: Arc<dyn Expert>) -> Arc<dyn Expert> {
    Arc::new(Limited::new(expert, MAX_RUNNING, MAX_WAITING))
}

fn problem(message: String) -> Problem {
    Problem {
        line: 1,
        column: 1,
        message,
    }
}

/// `[local]` as the residency's policy; the default budget is 60% of this machine's memory.
fn residency_policy(local: &LocalTuning) -> ResidencyPolicy {
    let memory_budget = local.memory_budget.unwrap_or_else(|| {
        let mut system = sysinfo::System::new().ok()?;
        system.refresh_memory();
        let total = system.total_memory();
        (total > 0).then(|| total / 10 * 6)
    });
    ResidencyPolicy {
        memory_budget,
        idle_unload: local.idle_unload,
        load_wait: local.load_wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `serve --config FILE`: an expert that cannot be built is reported in FILE, at its entry.
    #[test]
    fn an_expert_problem_names_the_file_and_line_it_came_from() {
        let home = tempfile::tempdir().unwrap();
        let other = home.path().join("elsewhere.toml");
        let text = "listen = \"127.0.0.1:9000\"\n\n[[experts]]\nname = \"remote\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:1\"\napi_key = \"env:MOE_SOVEREIGN_TEST_UNSET_VARIABLE\"\n";
        std::fs::write(&other, text).unwrap();
        let config = crate::config::load(&other).unwrap();
        let home = Home::at(home.path().to_owned());
        let Err(error) = Routing::new(&home, &config) else {
            panic!("an unset api_key variable must be refused");
        };
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("{}:4:8: expert \"remote\"", other.display())),
            "{message}"
        );
    }
}
