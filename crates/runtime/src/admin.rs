//! What the CLI, the dashboard and the tray show and change, in one place: key and profile
//! listings, models with their residency, Claude's wiring state, doctor — and the dashboard's
//! backend over them.

use std::path::PathBuf;
use std::sync::Arc;

use moe_sovereign_experts::{Expert, Profile};
use moe_sovereign_gateway::admin::{Action, AdminBackend, AdminError};
use moe_sovereign_keys::{KeyError, KeyManager};
use moe_sovereign_local::{Registry, ResidencyChange};
use moe_sovereign_telemetry::{Hub as TelemetryHub, LiveEvent};
use moe_sovereign_wiring::{FileStatus, Params, Target, Wiring};
use serde_json::{Value, json};

use crate::config::{Config, ExpertKind};
use crate::config_edit::ProfileTarget;
use crate::models::PullEvent;
use crate::routing::Routing;
use crate::{Home, wiring};

/// Puts the residency's loads, failures and unloads on the live feed (the dashboard's toasts,
/// the tray's model row and notifications), named after the model, whoever caused them: a
/// request's lazy load, the idle timer, the memory budget, the dashboard.
pub fn model_events(routing: &Arc<Routing>, hub: Arc<TelemetryHub>) {
    let names = Arc::downgrade(routing);
    routing
        .residency()
        .observe(Arc::new(move |slot: &str, change: ResidencyChange| {
            // A slot is named after its expert; an expert names its model in config.
            let model = names
                .upgrade()
                .and_then(|routing| {
                    routing
                        .config()
                        .experts
                        .iter()
                        .find(|e| e.name == slot)
                        .and_then(|e| e.model.clone())
                })
                .unwrap_or_else(|| slot.to_owned());
            let (state, detail) = match change {
                ResidencyChange::Loading => ("loading", None),
                ResidencyChange::Loaded => ("loaded", None),
                ResidencyChange::Failed(why) => ("failed", Some(why)),
                ResidencyChange::Unloaded => ("unloaded", None),
            };
            hub.publish(model_event(&model, state, detail));
        }));
}

/// Rebuilds the route table from the config in force: a model registered or removed while the
/// gateway runs serves (or stops serving) at once where the registry decides who answers.
pub fn refresh_routes(routing: &Routing) {
    if let Err(error) = routing.apply(routing.config()) {
        tracing::warn!("the models changed, but the routes could not follow: {error}");
    }
}

/// The `keys list --json` rows: id, name, profile, created_at, default. Never a key value.
pub fn key_rows(keys: &KeyManager) -> Result<Vec<Value>, KeyError> {
    let file = keys.load()?;
    Ok(file
        .keys
        .iter()
        .map(|k| {
            json!({
                "id": k.id, "name": k.name, "profile": k.profile,
                "created_at": k.created_at,
                "default": file.default_key.as_deref() == Some(k.id.as_str()),
            })
        })
        .collect())
}

/// Why [`profile_rows`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The key file could not be read.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// No key with that id.
    #[error("no key with id {0:?} (see `moe-sovereign keys list`)")]
    NoSuchKey(String),
}

/// The `profiles list --json` rows for key `key_id` (the default key when `None`): profile,
/// model_id, expert, active.
pub fn profile_rows(
    config: &Config,
    keys: &KeyManager,
    key_id: Option<&str>,
) -> Result<Vec<Value>, ViewError> {
    let file = keys.load()?;
    let id = key_id.map(str::to_owned).or(file.default_key.clone());
    let active = id
        .as_deref()
        .and_then(|id| file.keys.iter().find(|k| k.id == id))
        .map(|k| k.profile.clone());
    if let (Some(id), None) = (&id, &active) {
        return Err(ViewError::NoSuchKey(id.clone()));
    }
    Ok(Profile::ALL
        .iter()
        .map(|p| {
            let bound = config
                .profiles
                .iter()
                .find(|(bound, _)| bound == p)
                .map(|(_, names)| names.clone())
                .unwrap_or_default();
            let expert = bound
                .first()
                .cloned()
                .or_else(|| config.experts.first().map(|e| e.name.clone()));
            json!({
                "profile": p.name(), "model_id": p.model_id(), "expert": expert,
                "fallbacks": bound.get(1..).unwrap_or_default(),
                "active": active.as_deref() == Some(p.name()),
            })
        })
        .collect())
}

/// One Claude target's wiring: what `wire` recorded (URL, key id) and each file's state.
#[derive(Debug)]
pub struct TargetStatus {
    /// The target.
    pub target: Target,
    /// URL and key id `wire` recorded, when wired.
    pub recorded: Option<(String, String)>,
    /// Each file the wiring touches, with its state.
    pub files: Vec<(PathBuf, FileStatus)>,
}

/// How `target` is wired now. `default_url`/`default_key_id` stand in when it is not wired.
pub fn target_status(
    home: &Home,
    wiring: &Wiring,
    keys: &KeyManager,
    target: Target,
    default_url: &str,
    default_key_id: Option<&str>,
) -> Result<TargetStatus, String> {
    let recorded = wiring.recorded(target).ok().flatten();
    let (url, key_id) = match &recorded {
        Some((url, key_id)) => (url.clone(), key_id.clone()),
        None => (
            default_url.to_owned(),
            default_key_id.unwrap_or_default().to_owned(),
        ),
    };
    // Claude Code's files never hold the key; only Desktop's seed block needs it.
    let key = match target {
        Target::ClaudeDesktop => keys.reveal(Some(&key_id)).unwrap_or_default(),
        Target::ClaudeCode => String::new(),
    };
    let params = Params {
        key,
        url,
        key_id,
        helper: Wiring::helper_path(home.dir()),
    };
    let files = wiring.status(target, &params).map_err(|e| e.to_string())?;
    Ok(TargetStatus {
        target,
        recorded,
        files,
    })
}

/// Backups listed per file on the Wiring page.
const BACKUPS_SHOWN: usize = 5;

/// Asks the person at this machine for a GGUF file: the tray app's native file dialog. A
/// headless `serve` has none, and the dashboard then offers a path field only.
pub trait FilePicker: Send + Sync + std::fmt::Debug {
    /// The chosen file; `None` when they cancelled. Blocks until the dialog closes.
    fn pick_gguf(&self) -> Option<PathBuf>;
}

/// The dashboard's backend: the same library calls the CLI makes.
pub struct Backend {
    home: Home,
    routing: Arc<Routing>,
    hub: Arc<TelemetryHub>,
    picker: Option<Arc<dyn FilePicker>>,
}

impl Backend {
    /// A backend over `home`; `routing` holds the config in force (and is changed when a
    /// profile is bound to another expert); long work (a download) reports through `hub`.
    pub fn new(
        home: Home,
        routing: Arc<Routing>,
        hub: Arc<TelemetryHub>,
        picker: Option<Arc<dyn FilePicker>>,
    ) -> Self {
        Self {
            home,
            routing,
            hub,
            picker,
        }
    }

    /// Registers a file (the CLI's `models add`: checked, converted where worth it) and puts it
    /// to work at once when it is the model that answers (no `[[experts]]` configured).
    fn add_model(&self, path: &std::path::Path, name: Option<&str>) -> Result<Value, AdminError> {
        let entry = Registry::new(self.home.dir())
            .add(path, name)
            .map_err(|e| AdminError::BadRequest(e.to_string()))?;
        refresh_routes(&self.routing);
        self.hub
            .publish(model_event(&entry.name, "registered", None));
        Ok(json!({ "name": entry.name }))
    }

    fn config(&self) -> Config {
        self.routing.config()
    }

    /// The knowledge graph the pipeline uses, or the file itself when learning is off.
    fn graph(&self) -> Result<Arc<moe_sovereign_graph::Graph>, AdminError> {
        match self.routing.graph() {
            Some(graph) => Ok(graph),
            None => crate::knowledge::open(&self.home)
                .map(Arc::new)
                .map_err(|e| AdminError::Failed(e.to_string())),
        }
    }

    fn keys(&self) -> KeyManager {
        self.home
            .keys(self.home.secret_store(self.config().secret_store))
    }

    fn models(&self) -> Result<Value, AdminError> {
        let config = self.config();
        let models = Registry::new(self.home.dir())
            .list()
            .map_err(|e| AdminError::Failed(e.to_string()))?;
        let loaded = self.routing.residency().loaded();
        let rows: Vec<Value> = models
            .iter()
            .map(|m| {
                // A slot is named after its expert; an expert names its model in config.
                let resident = loaded.iter().any(|(slot, _)| {
                    *slot == m.name
                        || config
                            .experts
                            .iter()
                            .any(|e| e.name == *slot && e.model.as_deref() == Some(&m.name))
                });
                json!({
                    "name": m.name, "architecture": m.architecture,
                    "quantization": m.quantization, "size_bytes": m.size,
                    "context_length": m.context_length, "path": m.path,
                    "resident": resident,
                })
            })
            .collect();
        let ram = self
            .hub
            .history()
            .latest()
            .map_or(0, |sample| sample.memory_total);
        Ok(json!({
            "data": rows,
            "memory_budget_bytes": self.routing.residency().budget(),
            "recommended": crate::models::recommended(ram),
            "can_pick": self.picker.is_some(),
        }))
    }

    /// Binds a profile to an expert, a registered model or a model server: `config.toml`
    /// changed (comments kept, backed up), then put in force without a restart.
    fn bind_profile(&self, profile: &str, target: &Value) -> Result<Value, AdminError> {
        let profile = parse_profile(profile)?;
        let text = |key: &str| target.get(key).and_then(Value::as_str).map(str::to_owned);
        let target = if let Some(expert) = text("expert") {
            ProfileTarget::Expert(expert)
        } else if let Some(model) = text("model").filter(|_| text("base_url").is_none()) {
            ProfileTarget::Model(model)
        } else if let Some(base_url) = text("base_url") {
            let kind = match text("kind").as_deref() {
                Some("openai") => ExpertKind::OpenAi,
                Some("anthropic") => ExpertKind::Anthropic,
                other => {
                    return Err(AdminError::BadRequest(format!(
                        "kind must be \"openai\" or \"anthropic\", not {other:?}"
                    )));
                }
            };
            ProfileTarget::Remote {
                kind,
                base_url,
                model: text("model").filter(|m| !m.is_empty()),
            }
        } else {
            return Err(AdminError::BadRequest(
                "name an \"expert\", a registered \"model\", or a \"kind\" + \"base_url\"".into(),
            ));
        };
        let path = self.home.config_path();
        let edited = crate::config_edit::set_profile(
            &path,
            &Registry::new(self.home.dir()),
            profile,
            &target,
        )
        .map_err(AdminError::BadRequest)?;
        self.routing.apply(edited.config).map_err(|e| {
            AdminError::Failed(format!(
                "{} was changed, but the new experts cannot start: {e}",
                path.display()
            ))
        })?;
        Ok(json!({ "profile": profile.name(), "expert": edited.expert, "backup": edited.backup }))
    }

    fn local_experts_of(&self, model: &str) -> Result<Vec<Arc<dyn Expert>>, AdminError> {
        let experts = self.routing.local_experts_of(model);
        if experts.is_empty() {
            return Err(AdminError::NotFound(format!(
                "no profile uses {model:?}: bind a profile to it first (Profiles page)"
            )));
        }
        Ok(experts)
    }

    /// Loads a model now. Runs on the blocking pool: waits here for the engine, which loads on
    /// threads of its own, while the gateway's runtime goes on serving.
    fn load(&self, model: &str) -> Result<Value, AdminError> {
        let experts = self.local_experts_of(model)?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| AdminError::Failed(format!("cannot load {model}: {e}")))?;
        // The residency tells the live feed (loading, loaded, failed): see `model_events`.
        for expert in experts {
            runtime
                .block_on(expert.warm())
                .map_err(|error| AdminError::Failed(error.to_string()))?;
        }
        Ok(json!({ "name": model, "loaded": true }))
    }

    /// Starts a download on a thread of its own; progress and the outcome go to the live feed.
    fn pull(&self, repo: Option<String>, file: Option<String>) -> Result<Value, AdminError> {
        let home = self.home.clone();
        let hub = self.hub.clone();
        let routing = self.routing.clone();
        let label = repo
            .clone()
            .unwrap_or_else(|| moe_sovereign_hub::DEFAULT_REPO.into());
        let event = move |state: &str, progress, detail| LiveEvent::Model {
            name: label.clone(),
            state: state.into(),
            progress,
            detail,
        };
        std::thread::Builder::new()
            .name("model pull".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => return hub.publish(event("failed", None, Some(e.to_string()))),
                };
                // At most one progress event per percent.
                let mut last = u64::MAX;
                let result = runtime.block_on(crate::models::pull(
                    &home,
                    repo.as_deref(),
                    file.as_deref(),
                    None,
                    |e| match e {
                        PullEvent::Resolved(remote) => hub.publish(event(
                            "pulling",
                            Some((0, remote.size)),
                            Some(format!("{}/{}", remote.repo, remote.file)),
                        )),
                        PullEvent::Progress { done, total } => {
                            let percent = done * 100 / total.max(1);
                            if percent != last {
                                last = percent;
                                hub.publish(event("pulling", Some((done, total)), None));
                            }
                        }
                        PullEvent::Verified(_) => {}
                    },
                ));
                hub.publish(match result {
                    Ok(entry) => {
                        refresh_routes(&routing);
                        event("registered", None, Some(entry.name))
                    }
                    Err(message) => event("failed", None, Some(message)),
                });
            })
            .map_err(|e| AdminError::Failed(format!("cannot start the download: {e}")))?;
        Ok(json!({ "started": true }))
    }

    fn wiring(&self) -> Result<Value, AdminError> {
        let wiring = wiring::wiring(&self.home).map_err(|e| AdminError::Failed(e.to_string()))?;
        let keys = self.keys();
        let default_key = keys.load().ok().and_then(|f| f.default_key);
        let url = wiring::url_for(self.config().listen);
        let mut targets = Vec::new();
        for target in Target::ALL {
            let status = target_status(
                &self.home,
                &wiring,
                &keys,
                target,
                &url,
                default_key.as_deref(),
            )
            .map_err(AdminError::Failed)?;
            let files: Vec<Value> = status
                .files
                .iter()
                .map(|(path, state)| {
                    let (text, problem) = match state {
                        FileStatus::Missing => ("not found".to_owned(), false),
                        FileStatus::Broken(line, column, message) => (
                            format!("does not parse (line {line}, column {column}: {message})"),
                            true,
                        ),
                        FileStatus::Parsed { wired: true } => ("wired".to_owned(), false),
                        FileStatus::Parsed { wired: false } => {
                            ("parses, not wired".to_owned(), false)
                        }
                    };
                    let backups: Vec<PathBuf> = moe_sovereign_wiring::backups(path)
                        .into_iter()
                        .take(BACKUPS_SHOWN)
                        .collect();
                    json!({ "path": path, "state": text, "problem": problem, "backups": backups })
                })
                .collect();
            targets.push(json!({
                "target": target.name(),
                "title": match target {
                    Target::ClaudeDesktop => "Claude Desktop",
                    Target::ClaudeCode => "Claude Code",
                },
                "wired": status.recorded.is_some(),
                "url": status.recorded.as_ref().map(|(url, _)| url),
                "key_id": status.recorded.as_ref().map(|(_, id)| id),
                "files": files,
            }));
        }
        Ok(json!({ "targets": targets, "events": self.hub.recent_wiring() }))
    }

    /// Puts a backup back, if `file` is one of Claude's files we handle and `backup` one of its
    /// backups.
    fn restore(&self, file: &str, backup: &str) -> Result<Value, AdminError> {
        let known = self.wiring()?["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|t| t["files"].as_array().cloned().unwrap_or_default())
            .any(|f| f["path"].as_str() == Some(file));
        if !known {
            return Err(AdminError::NotFound(format!(
                "{file} is not one of Claude's files"
            )));
        }
        let saved = moe_sovereign_wiring::restore_backup(
            std::path::Path::new(file),
            std::path::Path::new(backup),
        )
        .map_err(|e| AdminError::BadRequest(e.to_string()))?;
        // Backups hold no key of ours: a restored wired file gets a live one again.
        let held_key = std::fs::read_to_string(file)
            .is_ok_and(|text| text.contains(moe_sovereign_keys::REDACTED_KEY));
        let mut rewired = None;
        if held_key && let Ok(w) = wiring::wiring(&self.home) {
            let target = w
                .recorded_files()
                .unwrap_or_default()
                .into_iter()
                .find(|(_, f)| f.as_path() == std::path::Path::new(file))
                .map(|(target, _)| target);
            if let Some(target) = target
                && let Ok(Some((url, key_id))) = w.recorded(target)
            {
                wiring::wire(
                    &self.home,
                    &self.config(),
                    target,
                    Some(&url),
                    Some(&key_id),
                    false,
                )
                .map_err(AdminError::Failed)?;
                rewired = Some(target.name());
            }
        }
        Ok(json!({ "file": file, "restored": backup, "backup": saved, "rewired": rewired }))
    }
}

fn model_event(name: &str, state: &str, detail: Option<String>) -> LiveEvent {
    LiveEvent::Model {
        name: name.into(),
        state: state.into(),
        progress: None,
        detail,
    }
}

fn key_error(error: KeyError) -> AdminError {
    match error {
        KeyError::UnknownKey(_) | KeyError::NoKeys => AdminError::NotFound(error.to_string()),
        other => AdminError::Failed(other.to_string()),
    }
}

fn target_named(name: &str) -> Result<Target, AdminError> {
    Target::ALL
        .into_iter()
        .find(|t| t.name() == name)
        .ok_or_else(|| {
            AdminError::NotFound(format!(
                "unknown client {name:?}: expected claude-desktop or claude-code"
            ))
        })
}

/// Each file a wiring touched: its path, whether it changed, its backup.
fn report_rows(report: &moe_sovereign_wiring::Report) -> Vec<Value> {
    report
        .files
        .iter()
        .map(|(path, update)| {
            json!({ "path": path, "changed": update.changed(), "backup": update.backup })
        })
        .collect()
}

fn parse_profile(name: &str) -> Result<Profile, AdminError> {
    Profile::parse(name).ok_or_else(|| {
        AdminError::BadRequest(format!(
            "unknown profile {name:?}: expected moe_native, moe_reasoning or moe_orchestrated"
        ))
    })
}

impl AdminBackend for Backend {
    fn call(&self, action: Action) -> Result<Value, AdminError> {
        let keys = self.keys();
        match action {
            Action::Keys => Ok(json!({ "data": key_rows(&keys).map_err(key_error)? })),
            Action::CreateKey { name, profile: p } => {
                let p = parse_profile(&p)?;
                let name = name.filter(|n| !n.trim().is_empty());
                let issued = keys.create(p.name(), name.as_deref()).map_err(key_error)?;
                Ok(json!({
                    "id": issued.record.id, "name": issued.record.name,
                    "profile": issued.record.profile, "created_at": issued.record.created_at,
                    "key": issued.plaintext,
                }))
            }
            Action::RevokeKey { id } => {
                let record =
                    crate::wiring::revoke_key(&self.home, &keys, &id).map_err(key_error)?;
                Ok(json!({ "id": record.id, "revoked": true }))
            }
            Action::SetProfile { id, profile: p } => {
                let p = parse_profile(&p)?;
                let record = keys
                    .set_profile(id.as_deref(), p.name())
                    .map_err(key_error)?;
                Ok(json!({ "id": record.id, "profile": record.profile }))
            }
            Action::Profiles { id } => match profile_rows(&self.config(), &keys, id.as_deref()) {
                Ok(rows) => Ok(Value::Array(rows)),
                Err(ViewError::NoSuchKey(id)) => {
                    Err(AdminError::NotFound(format!("no key with id {id:?}")))
                }
                Err(ViewError::Keys(e)) => Err(key_error(e)),
            },
            Action::Models => self.models(),
            Action::AddModel { path, name } => {
                self.add_model(std::path::Path::new(&path), name.as_deref())
            }
            Action::PickModel => {
                let picker = self.picker.as_ref().ok_or_else(|| {
                    AdminError::BadRequest(
                        "no file dialog here (a headless gateway): give the file's path".into(),
                    )
                })?;
                match picker.pick_gguf() {
                    Some(path) => {
                        let mut answer = self.add_model(&path, None)?;
                        answer["picked"] = Value::Bool(true);
                        Ok(answer)
                    }
                    None => Ok(json!({ "picked": false })),
                }
            }
            Action::PullModel { repo, file } => self.pull(repo, file),
            Action::LoadModel { name } => self.load(&name),
            Action::UnloadModel { name } => {
                let experts = self.local_experts_of(&name)?;
                let mut unloaded = false;
                for expert in experts {
                    unloaded |= self
                        .routing
                        .residency()
                        .unload(expert.name())
                        .map_err(AdminError::BadRequest)?;
                }
                Ok(json!({ "name": name, "unloaded": unloaded }))
            }
            Action::RemoveModel { name } => {
                let entry = Registry::new(self.home.dir())
                    .remove(&name)
                    .map_err(|e| AdminError::NotFound(e.to_string()))?;
                refresh_routes(&self.routing);
                Ok(json!({ "name": entry.name, "removed": true }))
            }
            Action::Wiring => self.wiring(),
            Action::Wire { target } => {
                let target = target_named(&target)?;
                let wired = wiring::wire(&self.home, &self.config(), target, None, None, false)
                    .map_err(AdminError::Failed)?;
                Ok(
                    json!({ "target": target.name(), "url": wired.url, "key_id": wired.key_id,
                           "files": report_rows(&wired.report) }),
                )
            }
            Action::RestoreBackup { file, backup } => self.restore(&file, &backup),
            Action::Unwire { target } => {
                let target = target_named(&target)?;
                let report =
                    wiring::unwire(&self.home, target, false).map_err(AdminError::Failed)?;
                Ok(json!({ "target": target.name(), "files": report_rows(&report) }))
            }
            Action::Experts => {
                let rows: Vec<Value> = self
                    .config()
                    .experts
                    .iter()
                    .map(|e| {
                        json!({
                            "name": e.name,
                            "kind": match e.kind {
                                ExpertKind::Local => "local",
                                ExpertKind::OpenAi => "openai",
                                ExpertKind::Anthropic => "anthropic",
                            },
                            "base_url": e.base_url, "model": e.model,
                        })
                    })
                    .collect();
                Ok(json!({ "data": rows }))
            }
            Action::BindProfile { profile, target } => self.bind_profile(&profile, &target),
            Action::Doctor => Ok(json!({ "checks": crate::doctor::run() })),
            Action::Facts { key_id, query } => {
                let graph = self.graph()?;
                let rows = crate::knowledge::fact_rows(
                    &graph,
                    &keys,
                    key_id.as_deref(),
                    query.as_deref(),
                    crate::knowledge::DEFAULT_LIMIT,
                )
                .map_err(|e| AdminError::Failed(e.to_string()))?;
                let total = graph
                    .count(key_id.as_deref())
                    .map_err(|e| AdminError::Failed(e.to_string()))?;
                Ok(json!({ "data": rows, "total": total, "learning": self.config().graph }))
            }
            Action::ForgetFact { id } => {
                let forgotten = self
                    .graph()?
                    .forget(id, None)
                    .map_err(|e| AdminError::Failed(e.to_string()))?;
                if !forgotten {
                    return Err(AdminError::NotFound(format!("no fact with id {id}")));
                }
                Ok(json!({ "id": id, "forgotten": true }))
            }
            Action::ForgetFacts { key_id } => {
                let count = self
                    .graph()?
                    .forget_all(key_id.as_deref())
                    .map_err(|e| AdminError::Failed(e.to_string()))?;
                Ok(json!({ "forgotten": count }))
            }
            Action::Logs { level } => Ok(json!({
                "file": crate::logging::dir(&self.home),
                "lines": crate::logging::tail(&self.home, level.as_deref(), 500),
            })),
        }
    }
}
