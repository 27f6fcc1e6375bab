//! Notices changes to the home folder made by anyone (the CLI, the dashboard, another gateway):
//! keys, Claude's wiring record, the model registry, the config. The gateway re-routes when
//! the registry changes; the tray redraws its menu. One event per burst: writers replace a file
//! through a temporary one, which is several notifications.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::{broadcast, mpsc};

/// How long a burst of file events must be quiet before it is reported.
const SETTLE: Duration = Duration::from_millis(150);

/// Which of the home folder's files changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HomeChange {
    /// `keys.json`: a key created, revoked, its profile switched, the default key changed.
    Keys,
    /// `wiring.json`: a Claude client wired or unwired.
    Wiring,
    /// `models.json`: a model registered or removed.
    Models,
    /// `config.toml`.
    Config,
}

impl HomeChange {
    /// The change a file of the home folder stands for.
    pub fn of(file: &Path) -> Option<Self> {
        match file.file_name()?.to_str()? {
            "keys.json" => Some(Self::Keys),
            "wiring.json" => Some(Self::Wiring),
            "models.json" => Some(Self::Models),
            "config.toml" => Some(Self::Config),
            _ => None,
        }
    }
}

/// A running watcher; dropping it stops it.
pub struct HomeWatcher {
    _notify: RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HomeWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Watches `dir` (not its subfolders); changes go to `changes`, one per file per burst.
pub fn watch(dir: &Path, changes: broadcast::Sender<HomeChange>) -> notify::Result<HomeWatcher> {
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut notify = notify::recommended_watcher(move |result: notify::Result<notify::Event>| {
        if let Ok(event) = result
            && !matches!(event.kind, EventKind::Access(_))
        {
            for path in event.paths {
                let _ = tx.send(path);
            }
        }
    })?;
    notify.watch(dir, RecursiveMode::NonRecursive)?;
    let task = tokio::spawn(async move {
        let mut pending = Vec::new();
        while let Some(path) = rx.recv().await {
            pending.push(path);
            // Collect the burst, then report each file once.
            while let Ok(Some(path)) = tokio::time::timeout(SETTLE, rx.recv()).await {
                pending.push(path);
            }
            let mut seen = Vec::new();
            for change in pending.drain(..).filter_map(|p| HomeChange::of(&p)) {
                if !seen.contains(&change) {
                    seen.push(change);
                    let _ = changes.send(change);
                }
            }
        }
    });
    Ok(HomeWatcher {
        _notify: notify,
        task,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_files_count() {
        assert_eq!(
            HomeChange::of(Path::new("/h/keys.json")),
            Some(HomeChange::Keys)
        );
        assert_eq!(
            HomeChange::of(Path::new("/h/models.json")),
            Some(HomeChange::Models)
        );
        assert_eq!(HomeChange::of(Path::new("/h/.keys.json.tmp1")), None);
        assert_eq!(HomeChange::of(Path::new("/h/live.json")), None);
    }

    #[tokio::test]
    async fn a_replaced_file_is_one_change() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = broadcast::channel(16);
        let _watcher = watch(dir.path(), tx).unwrap();
        let temp = dir.path().join(".keys.json.tmp");
        std::fs::write(&temp, "{}").unwrap();
        std::fs::rename(&temp, dir.path().join("keys.json")).unwrap();
        let change = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("a change within the deadline")
            .unwrap();
        assert_eq!(change, HomeChange::Keys);
        // The burst is reported once: the next thing seen is the next write.
        std::fs::write(dir.path().join("wiring.json"), "{}").unwrap();
        let next = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("a change within the deadline")
            .unwrap();
        assert_eq!(next, HomeChange::Wiring);
    }
}
