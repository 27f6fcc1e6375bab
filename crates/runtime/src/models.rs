//! Pulling a model: the download (resumable, verified) and its registration, shared by
//! `models pull`, the dashboard and the tray.

use std::path::PathBuf;

use moe_sovereign_hub::{self as hub, Hub, RemoteFile};
use moe_sovereign_local::{ModelEntry, Registry};

use crate::Home;

/// A model we recommend pulling, for the dashboard and the tray's first run.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Recommended {
    /// `owner/name` on Hugging Face.
    pub repo: &'static str,
    /// The file.
    pub file: &'static str,
    /// What it is, in a few words.
    pub title: &'static str,
    /// Download size in bytes.
    pub size_bytes: u64,
    /// Context length in tokens.
    pub context_length: u64,
    /// The least RAM it is recommended for, in bytes.
    pub min_ram_bytes: u64,
}

/// The curated list, best first; the first whose RAM floor this machine meets is recommended.
pub const CURATED: &[Recommended] = &[Recommended {
    repo: hub::DEFAULT_REPO,
    file: hub::DEFAULT_FILE,
    title: "SmolLM2 135M Instruct (Q4_1): small and fast, for trying things out",
    size_bytes: 98_362_432,
    context_length: 8192,
    min_ram_bytes: 0,
}];

/// The model to recommend on a machine with `ram_bytes` of memory.
pub fn recommended(ram_bytes: u64) -> Option<Recommended> {
    CURATED
        .iter()
        .copied()
        .find(|m| ram_bytes >= m.min_ram_bytes)
}

/// What a pull reports while it runs.
#[derive(Debug, Clone)]
pub enum PullEvent {
    /// The file is resolved: what will be downloaded.
    Resolved(RemoteFile),
    /// Bytes on disk of the total.
    Progress {
        /// Bytes done.
        done: u64,
        /// Bytes in all.
        total: u64,
    },
    /// Downloaded and verified; registering it next.
    Verified(PathBuf),
}

/// Downloads `file` of `repo` (default: the small default model) into
/// `home/models/<owner>--<name>/`, verifies it and registers it as `name`. A download that
/// verified but cannot be registered is kept, and the error says where.
pub async fn pull(
    home: &Home,
    repo: Option<&str>,
    file: Option<&str>,
    name: Option<&str>,
    mut events: impl FnMut(PullEvent),
) -> Result<ModelEntry, String> {
    let (repo, file) = match repo {
        Some(repo) => (repo.to_owned(), file.map(str::to_owned)),
        None => (
            hub::DEFAULT_REPO.to_owned(),
            Some(file.unwrap_or(hub::DEFAULT_FILE).to_owned()),
        ),
    };
    let client = Hub::from_env().map_err(|e| e.to_string())?;
    let file = client
        .choose(&repo, file.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    let remote = client
        .resolve(&repo, &file)
        .await
        .map_err(|e| e.to_string())?;
    events(PullEvent::Resolved(remote.clone()));
    let dir = home.dir().join("models").join(repo.replace('/', "--"));
    let path = client
        .download(&remote, &dir, |p| {
            events(PullEvent::Progress {
                done: p.done,
                total: p.total,
            });
        })
        .await
        .map_err(|e| e.to_string())?;
    events(PullEvent::Verified(path.clone()));
    Registry::new(home.dir())
        .add(&path, name)
        .map_err(|e| format!("{e} (the download is kept at {})", path.display()))
}
