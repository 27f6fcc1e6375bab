//! Changing `config.toml` from the dashboard (and the tray): which expert a profile uses. The
//! file keeps its comments, order and formatting (`toml_edit`); the new text must validate
//! before anything is written; the old text is backed up and the write is atomic, mode 0600 —
//! the same rules as Claude's files.

use std::path::{Path, PathBuf};

use moe_sovereign_experts::Profile;
use moe_sovereign_local::Registry;
use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, value};

use crate::config::{self, Config, ExpertKind};
use crate::wiring::normalize_url;

/// What a profile should be answered by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileTarget {
    /// An expert already in `config.toml`.
    Expert(String),
    /// A registered local model (an expert for it is added when none exists).
    Model(String),
    /// A model server (added as an expert unless one with the same kind, URL and model exists).
    Remote {
        /// `openai` or `anthropic`.
        kind: ExpertKind,
        /// The server's address.
        base_url: String,
        /// The upstream model id (optional).
        model: Option<String>,
    },
}

/// The result of an edit.
#[derive(Debug)]
pub struct Edited {
    /// The config now in the file.
    pub config: Config,
    /// The expert the profile now uses.
    pub expert: String,
    /// Where the previous text was saved (none when there was no file).
    pub backup: Option<PathBuf>,
}

/// Binds `profile` to `target` in the config file at `path`; `registry` checks local models.
pub fn set_profile(
    path: &Path,
    registry: &Registry,
    profile: Profile,
    target: &ProfileTarget,
) -> Result<Edited, String> {
    let before = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let text = before.as_deref().unwrap_or("");
    let current = config::parse(path, text).map_err(|e| e.to_string())?;
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut names: Vec<String> = current.experts.iter().map(|e| e.name.clone()).collect();

    // With no experts configured, the first registered model answers every profile; keep it the
    // first expert, so profiles not bound to anything keep their model.
    let mut added = Vec::new();
    let mut pending_prefix = None;
    if current.experts.is_empty()
        && let Some(first) = registry.list().map_err(|e| e.to_string())?.first()
        && !matches!(target, ProfileTarget::Model(m) if *m == first.name)
    {
        added.push(local_expert(&first.name, &first.name));
        names.push(first.name.clone());
    }
    let expert = match target {
        ProfileTarget::Expert(name) => {
            if !names.contains(name) {
                return Err(format!("no expert {name:?} in {}", path.display()));
            }
            name.clone()
        }
        ProfileTarget::Model(model) => {
            registry.get(model).map_err(|e| e.to_string())?;
            match current
                .experts
                .iter()
                .find(|e| e.kind == ExpertKind::Local && e.model.as_deref() == Some(model))
            {
                Some(existing) => existing.name.clone(),
                None => {
                    let name = unique(model, &names);
                    added.push(local_expert(&name, model));
                    name
                }
            }
        }
        ProfileTarget::Remote {
            kind,
            base_url,
            model,
        } => {
            let base_url = normalize_url(base_url)?;
            let same = current.experts.iter().find(|e| {
                e.kind == *kind && e.base_url.trim_end_matches('/') == base_url && e.model == *model
            });
            match same {
                Some(existing) => existing.name.clone(),
                None => {
                    let kind_name = match kind {
                        ExpertKind::OpenAi => "openai",
                        ExpertKind::Anthropic => "anthropic",
                        ExpertKind::Local => return Err("a remote expert needs a URL".into()),
                    };
                    let name = unique(kind_name, &names);
                    let mut table = Table::new();
                    table["name"] = value(name.as_str());
                    table["kind"] = value(kind_name);
                    table["base_url"] = value(base_url.as_str());
                    if let Some(model) = model {
                        table["model"] = value(model.as_str());
                    }
                    added.push(table);
                    name
                }
            }
        }
    };
    // A file of comments only: toml_edit keeps them as the document's trailing text, which
    // would follow the first table added; they stay on top instead.
    if doc.as_table().is_empty() {
        let comments = doc.trailing().as_str().unwrap_or_default().to_owned();
        if !comments.trim().is_empty() {
            doc.set_trailing("");
            match added.first_mut() {
                Some(table) => table.decor_mut().set_prefix(comments),
                None => pending_prefix = Some(comments),
            }
        }
    }
    if !added.is_empty() {
        if !doc.contains_key("experts") {
            doc["experts"] = Item::ArrayOfTables(ArrayOfTables::new());
        }
        let experts = doc["experts"]
            .as_array_of_tables_mut()
            .ok_or_else(|| format!("{}: `experts` is not a list of tables", path.display()))?;
        for table in added {
            experts.push(table);
        }
    }
    if !doc.contains_key("profiles") {
        let mut profiles = Table::new();
        profiles.set_implicit(true);
        doc["profiles"] = Item::Table(profiles);
    }
    let profiles = doc["profiles"]
        .as_table_mut()
        .ok_or_else(|| format!("{}: `profiles` is not a table", path.display()))?;
    if !profiles.contains_key(profile.name()) {
        let mut table = Table::new();
        if let Some(prefix) = pending_prefix.take() {
            table.decor_mut().set_prefix(prefix);
        }
        profiles.insert(profile.name(), Item::Table(table));
    }
    // One expert chosen: it replaces an ordered list (`experts = […]`) too.
    if let Some(table) = profiles[profile.name()].as_table_like_mut() {
        table.remove("experts");
    }
    profiles[profile.name()]["expert"] = value(expert.as_str());

    let after = doc.to_string();
    let config = config::parse(path, &after)
        .map_err(|e| format!("the change would make the config invalid: {e}"))?;
    let backup = moe_sovereign_wiring::replace_with_backup(path, before.as_deref(), &after)
        .map_err(|e| e.to_string())?;
    Ok(Edited {
        config,
        expert,
        backup,
    })
}

fn local_expert(name: &str, model: &str) -> Table {
    let mut table = Table::new();
    table["name"] = value(name);
    table["kind"] = value("local");
    table["model"] = value(model);
    table
}

/// `base`, or `base-2`, `base-3`… whichever is not taken.
fn unique(base: &str, taken: &[String]) -> String {
    if !taken.iter().any(|t| t == base) {
        return base.to_owned();
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|candidate| !taken.contains(candidate))
        .unwrap_or_else(|| base.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home() -> (tempfile::TempDir, PathBuf, Registry) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let registry = Registry::new(dir.path());
        (dir, path, registry)
    }

    const CONFIG: &str = "# my gateway\nlisten = \"127.0.0.1:8742\"  # stable\n\n[[experts]]\nname = \"big\"   # the GPU box\nkind = \"openai\"\nbase_url = \"http://10.0.0.5:8000/v1\"\n\n[profiles.moe_native]\nexpert = \"big\" # fast\n";

    #[test]
    fn binding_a_new_remote_expert_keeps_comments_order_and_backs_up() {
        let (_dir, path, registry) = home();
        std::fs::write(&path, CONFIG).unwrap();
        let edited = set_profile(
            &path,
            &registry,
            Profile::Reasoning,
            &ProfileTarget::Remote {
                kind: ExpertKind::Anthropic,
                base_url: "http://127.0.0.1:9000/v1/".into(),
                model: Some("thinker".into()),
            },
        )
        .unwrap();
        assert_eq!(edited.expert, "anthropic");
        let after = std::fs::read_to_string(&path).unwrap();
        assert!(
            after.starts_with(
                CONFIG
                    .trim_end_matches('\n')
                    .split("\n[profiles")
                    .next()
                    .unwrap()
            ),
            "{after}"
        );
        assert!(after.contains("expert = \"big\" # fast"), "{after}");
        assert!(
            after.contains("[profiles.moe_reasoning]\nexpert = \"anthropic\""),
            "{after}"
        );
        assert!(
            after.contains("base_url = \"http://127.0.0.1:9000\""),
            "{after}"
        );
        assert_eq!(
            std::fs::read_to_string(edited.backup.unwrap()).unwrap(),
            CONFIG
        );
        let bound: Vec<_> = edited
            .config
            .profiles
            .iter()
            .map(|(p, e)| (p.name(), e[0].as_str()))
            .collect();
        assert!(
            bound.contains(&("moe_reasoning", "anthropic"))
                && bound.contains(&("moe_native", "big"))
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // The same server again reuses the expert instead of adding another.
        let again = set_profile(
            &path,
            &registry,
            Profile::Orchestrated,
            &ProfileTarget::Remote {
                kind: ExpertKind::Anthropic,
                base_url: "http://127.0.0.1:9000".into(),
                model: Some("thinker".into()),
            },
        )
        .unwrap();
        assert_eq!(again.expert, "anthropic");
        assert_eq!(again.config.experts.len(), 2);
    }

    #[test]
    fn unknown_experts_and_models_change_nothing() {
        let (_dir, path, registry) = home();
        std::fs::write(&path, CONFIG).unwrap();
        for target in [
            ProfileTarget::Expert("nope".into()),
            ProfileTarget::Model("not-registered".into()),
            ProfileTarget::Remote {
                kind: ExpertKind::OpenAi,
                base_url: "not a url".into(),
                model: None,
            },
        ] {
            assert!(
                set_profile(&path, &registry, Profile::Native, &target).is_err(),
                "{target:?}"
            );
            assert_eq!(std::fs::read_to_string(&path).unwrap(), CONFIG);
        }
        let broken = "listen = [";
        std::fs::write(&path, broken).unwrap();
        assert!(
            set_profile(
                &path,
                &registry,
                Profile::Native,
                &ProfileTarget::Expert("big".into())
            )
            .is_err()
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
    }

    #[test]
    fn comments_of_a_comment_only_file_stay_on_top() {
        let (_dir, path, registry) = home();
        std::fs::write(&path, "# mine\n# keep\n").unwrap();
        let target = ProfileTarget::Remote {
            kind: ExpertKind::OpenAi,
            base_url: "http://127.0.0.1:8080".into(),
            model: None,
        };
        set_profile(&path, &registry, Profile::Native, &target).unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        assert!(after.starts_with("# mine\n# keep\n[[experts]]"), "{after}");
        std::fs::write(&path, "# mine\n[[experts]]\nname = \"a\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:1\"\n").unwrap();
        set_profile(
            &path,
            &registry,
            Profile::Native,
            &ProfileTarget::Expert("a".into()),
        )
        .unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        assert!(
            after.starts_with("# mine\n[[experts]]")
                && after.ends_with("[profiles.moe_native]\nexpert = \"a\"\n"),
            "{after}"
        );
    }

    #[test]
    fn a_missing_file_is_created_with_just_the_binding() {
        let (_dir, path, registry) = home();
        let edited = set_profile(
            &path,
            &registry,
            Profile::Native,
            &ProfileTarget::Remote {
                kind: ExpertKind::OpenAi,
                base_url: "http://127.0.0.1:8080".into(),
                model: None,
            },
        )
        .unwrap();
        assert!(edited.backup.is_none());
        let after = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            after,
            "[[experts]]\nname = \"openai\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:8080\"\n\n[profiles.moe_native]\nexpert = \"openai\"\n"
        );
    }
}
