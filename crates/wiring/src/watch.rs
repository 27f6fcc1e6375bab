//! Keeps the wiring in place while the gateway runs: watches the folders of every wired file
//! (and `wiring.json`), and after a burst of changes settles, checks each wired file once —
//! our keys missing → re-applied; a file that no longer parses → reported, left alone; a target
//! unwired → ignored from then on. Our own writes leave the files wired, so they cause no
//! further write: there is no feedback loop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::ModifyKind;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::{broadcast, mpsc};

use crate::{FileStatus, Params, Target, Wiring, WiringError};

/// How long a burst of file events must be quiet before the files are checked.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// What the watcher did or saw (for logs, the tray and the UI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Our keys were missing from `file` and were written back.
    Reapplied { target: Target, file: PathBuf },
    /// `file` no longer parses; it was left alone.
    Broken {
        target: Target,
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// Re-applying failed.
    Failed { target: Target, message: String },
    /// A check of every wired file, started at `started`, ended; what it did was sent before
    /// this. Lets a caller wait for the watcher to have seen a change instead of sleeping.
    Checked { started: std::time::Instant },
}

/// Builds the parameters for a wired target from its record (url, key id); `None` when that is
/// impossible now (e.g. the key was revoked), with the reason.
pub type ParamsFor = Arc<dyn Fn(Target, &str, &str) -> Result<Params, String> + Send + Sync>;

/// A running watcher; dropping it stops it.
pub struct Watcher {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts watching. Checks once at start (Claude may have rewritten a file while we were off).
pub fn spawn(
    wiring: Wiring,
    params_for: ParamsFor,
    events: broadcast::Sender<Event>,
) -> Result<Watcher, WiringError> {
    let (tx, rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut notify = notify::recommended_watcher(move |result: notify::Result<notify::Event>| {
        // Only changes count: reading a file (our own checks do) must not trigger a check.
        if let Ok(event) = result
            && matches!(
                event.kind,
                EventKind::Create(_) | EventKind::Remove(_) | EventKind::Modify(_) | EventKind::Any
            )
            && !matches!(event.kind, EventKind::Modify(ModifyKind::Metadata(_)))
        {
            for path in event.paths {
                let _ = tx.send(path);
            }
        }
    })
    .map_err(|e| WiringError::io(&wiring.home, std::io::Error::other(e)))?;
    let mut watched = BTreeSet::new();
    refresh_watches(&wiring, &mut notify, &mut watched);
    let task = tokio::spawn(run(wiring, params_for, events, rx, notify, watched));
    Ok(Watcher { task })
}

/// Watches our home and the folder of every recorded file (new ones appear when a target is
/// wired while we run: the home's `wiring.json` changes, and we look again).
fn refresh_watches(
    wiring: &Wiring,
    notify: &mut RecommendedWatcher,
    watched: &mut BTreeSet<PathBuf>,
) {
    let mut dirs = vec![wiring.home.clone()];
    if let Ok(files) = wiring.recorded_files() {
        dirs.extend(
            files
                .iter()
                .filter_map(|(_, f)| f.parent().map(Path::to_owned)),
        );
    }
    for dir in dirs {
        if !watched.contains(&dir) && dir.is_dir() {
            match notify.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    tracing::info!(dir = %dir.display(), "watching for changes to the wiring");
                    watched.insert(dir);
                }
                Err(e) => tracing::warn!(dir = %dir.display(), "cannot watch: {e}"),
            }
        }
    }
}

async fn run(
    wiring: Wiring,
    params_for: ParamsFor,
    events: broadcast::Sender<Event>,
    mut rx: mpsc::UnboundedReceiver<PathBuf>,
    mut notify: RecommendedWatcher,
    mut watched: BTreeSet<PathBuf>,
) {
    let mut reported: BTreeMap<PathBuf, FileStatus> = BTreeMap::new();
    let mut pass = 1;
    let mut postponed;
    (reported, postponed) = check_off_thread(&wiring, &params_for, &events, reported, pass).await;
    refresh_watches(&wiring, &mut notify, &mut watched);
    // Claude's folders and our home see other writes all the time (logs, caches): only events
    // on `wiring.json` or a wired file start or extend the quiet period.
    let relevant_paths = |wiring: &Wiring| -> BTreeSet<PathBuf> {
        let mut paths: BTreeSet<PathBuf> = wiring
            .recorded_files()
            .map(|files| files.into_iter().map(|(_, f)| f).collect())
            .unwrap_or_default();
        paths.insert(wiring.state_path());
        paths
    };
    let mut relevant = relevant_paths(&wiring);
    loop {
        // A check that left a file alone (changed just before it) looks again once it is quiet,
        // whether or not another event comes.
        let event = match postponed {
            true => match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                Ok(None) => return,
                Ok(Some(path)) => Some(path),
                Err(_) => None,
            },
            false => match rx.recv().await {
                None => return,
                Some(path) => Some(path),
            },
        };
        if let Some(path) = event {
            if !relevant.contains(&path) {
                continue;
            }
            tracing::debug!(path = %path.display(), "a wired file changed");
            let mut deadline = tokio::time::Instant::now() + DEBOUNCE;
            loop {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(path)) if relevant.contains(&path) => {
                        deadline = tokio::time::Instant::now() + DEBOUNCE;
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
        }
        pass += 1;
        (reported, postponed) =
            check_off_thread(&wiring, &params_for, &events, reported, pass).await;
        refresh_watches(&wiring, &mut notify, &mut watched);
        relevant = relevant_paths(&wiring);
    }
}

/// [`check`] on a blocking thread: it reads files and asks the keychain, whose D-Bus client
/// must not block the (possibly single) runtime thread it needs.
async fn check_off_thread(
    wiring: &Wiring,
    params_for: &ParamsFor,
    events: &broadcast::Sender<Event>,
    mut reported: BTreeMap<PathBuf, FileStatus>,
    pass: u64,
) -> (BTreeMap<PathBuf, FileStatus>, bool) {
    let (wiring, params_for, events) = (wiring.clone(), Arc::clone(params_for), events.clone());
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        tracing::debug!(pass, "wiring check started");
        let postponed = check(&wiring, &params_for, &events, &mut reported);
        tracing::debug!(pass, postponed, "wiring checked");
        let _ = events.send(Event::Checked { started });
        (reported, postponed)
    })
    .await
    .unwrap_or_default()
}

/// Whether `file` was modified less than [`DEBOUNCE`] ago.
fn changed_lately(file: &Path) -> bool {
    std::fs::metadata(file)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok())
        .is_some_and(|age| age < DEBOUNCE)
}

/// Checks every wired target once and re-applies where our keys are missing — except in files
/// changed within the quiet period (another program may be half-way through writing them);
/// whether it left any such file for a later look.
pub(crate) fn check(
    wiring: &Wiring,
    params_for: &ParamsFor,
    events: &broadcast::Sender<Event>,
    reported: &mut BTreeMap<PathBuf, FileStatus>,
) -> bool {
    let mut postponed = false;
    for target in Target::ALL {
        let Ok(Some((url, key_id))) = wiring.recorded(target) else {
            continue;
        };
        let params = match params_for(target, &url, &key_id) {
            Ok(params) => params,
            Err(message) => {
                tracing::warn!(%target, "cannot keep the wiring in place: {message}");
                let _ = events.send(Event::Failed { target, message });
                continue;
            }
        };
        tracing::debug!(%target, "checking the wiring");
        let statuses = match wiring.status(target, &params) {
            Ok(statuses) => statuses,
            Err(e) => {
                let _ = events.send(Event::Failed {
                    target,
                    message: e.to_string(),
                });
                continue;
            }
        };
        let mut stale = Vec::new();
        for (file, status) in statuses {
            match &status {
                FileStatus::Broken(line, column, message) => {
                    if reported.get(&file) != Some(&status) {
                        tracing::warn!(
                            %target, file = %file.display(),
                            "no longer parses (line {line}, column {column}: {message}); left alone"
                        );
                        let _ = events.send(Event::Broken {
                            target,
                            file: file.clone(),
                            line: *line,
                            column: *column,
                            message: message.clone(),
                        });
                    }
                }
                FileStatus::Missing | FileStatus::Parsed { wired: false }
                    if changed_lately(&file) =>
                {
                    tracing::debug!(%target, file = %file.display(), "changed just now; checked again once quiet");
                    postponed = true;
                }
                FileStatus::Missing | FileStatus::Parsed { wired: false } => {
                    stale.push(file.clone())
                }
                FileStatus::Parsed { wired: true } => {}
            }
            reported.insert(file, status);
        }
        if stale.is_empty() {
            continue;
        }
        match wiring.wire_files(target, &params, false, &stale) {
            Ok(report) => {
                for (file, update) in report.files {
                    if update.changed() {
                        tracing::info!(%target, file = %file.display(), "our keys were missing: re-applied");
                        let _ = events.send(Event::Reapplied { target, file });
                    }
                }
            }
            Err(e) => {
                tracing::warn!(%target, "re-applying failed: {e}");
                let _ = events.send(Event::Failed {
                    target,
                    message: e.to_string(),
                });
            }
        }
    }
    postponed
}
