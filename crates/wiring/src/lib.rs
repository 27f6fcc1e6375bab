//! Wiring Claude Desktop and Claude Code to the gateway: locate their files, merge only our keys
//! (every other byte kept), back up, write atomically (0600), undo exactly, and keep it that way
//! (a notify watcher).
//!
//! Layout:
//! - [`json`]: a strict JSON reader with spans, and byte-preserving edits;
//! - `file`: the one safe-write routine (parse first, backup, temp + fsync + rename, 0600);
//! - [`locate`]: where Claude's files are on macOS, Windows (MSIX, `Claude Nest`), Linux, WSL;
//! - [`plan`]: what each target needs, applying and undoing one file's changes;
//! - `state`: `wiring.json` in our home (what was there before; our values only as hashes);
//! - [`watch`]: re-applies when Claude or a person drops our keys; reports broken files.

pub mod json;
pub mod locate;
pub mod plan;
pub mod watch;

mod file;
mod state;

use std::fmt;
use std::path::{Path, PathBuf};

pub use file::{Update, backups, replace_with_backup, restore_backup, scrub_backups};
pub use locate::{Env, Platform};
pub use plan::Params;
use state::{FileState, State};

/// What can be wired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// Claude Desktop (the seed's block and the third-party profile).
    ClaudeDesktop,
    /// Claude Code (`~/.claude/settings.json`).
    ClaudeCode,
}

impl Target {
    /// Both.
    pub const ALL: [Self; 2] = [Self::ClaudeDesktop, Self::ClaudeCode];

    /// `claude-desktop` / `claude-code`.
    pub fn name(self) -> &'static str {
        match self {
            Self::ClaudeDesktop => "claude-desktop",
            Self::ClaudeCode => "claude-code",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything that can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    /// A file does not parse; it is left untouched.
    #[error("{path}: line {line}, column {column}: {message} (the file was left untouched; fix it and retry)", path = .path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A file parses but has an unexpected shape where we write.
    #[error("{path}: {message} (the file was left untouched)", path = .path.display())]
    Shape { path: PathBuf, message: String },
    /// Reading or writing failed.
    #[error("{path}: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Claude's folders cannot be located.
    #[error("cannot locate Claude's files: {0}")]
    Locate(String),
}

impl WiringError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn shape(path: &Path, error: json::EditError) -> Self {
        Self::Shape {
            path: path.to_owned(),
            message: error.to_string(),
        }
    }
}

/// What a wire/unwire did (or, dry, would do) to each file.
#[derive(Debug, Clone)]
pub struct Report {
    /// Per file, in plan order.
    pub files: Vec<(PathBuf, Update)>,
}

/// How one file looks to us now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileStatus {
    /// Absent.
    Missing,
    /// Does not parse (line, column, message).
    Broken(usize, usize, String),
    /// Parses; our keys are all in place or not.
    Parsed { wired: bool },
}

/// Wiring over one of our homes and one set of Claude locations.
#[derive(Debug, Clone)]
pub struct Wiring {
    home: PathBuf,
    platform: Platform,
    env: Env,
}

impl Wiring {
    /// Our home (`wiring.json`, the credential helper) and where Claude's files are.
    pub fn new(home: PathBuf, platform: Platform, env: Env) -> Self {
        Self {
            home,
            platform,
            env,
        }
    }

    /// This machine's layout (see [`Platform::detect`], [`Env::from_process`]).
    pub fn from_process(home: PathBuf) -> Result<Self, WiringError> {
        Ok(Self::new(home, Platform::detect()?, Env::from_process()))
    }

    /// The layout in use.
    pub fn platform(&self) -> Platform {
        self.platform
    }

    /// The files `target` involves and their changes.
    pub fn plan(
        &self,
        target: Target,
        params: &Params,
    ) -> Result<Vec<plan::FilePlan>, WiringError> {
        plan::plan(target, self.platform, &self.env, params)
    }

    /// The recorded wiring of `target`: (url, key id), when it is wired.
    pub fn recorded(&self, target: Target) -> Result<Option<(String, String)>, WiringError> {
        let state = State::load(&self.home)?;
        Ok(state
            .targets
            .get(target.name())
            .filter(|t| t.wired)
            .map(|t| (t.url.clone(), t.key_id.clone())))
    }

    /// The files recorded for wired targets (what the watcher watches).
    pub fn recorded_files(&self) -> Result<Vec<(Target, PathBuf)>, WiringError> {
        let state = State::load(&self.home)?;
        let mut files = Vec::new();
        for target in Target::ALL {
            if let Some(record) = state.targets.get(target.name()).filter(|t| t.wired) {
                files.extend(record.files.keys().map(|p| (target, p.clone())));
            }
        }
        Ok(files)
    }

    /// `wiring.json`.
    pub fn state_path(&self) -> PathBuf {
        State::path(&self.home)
    }

    /// Points `target` at the gateway. Every file is parsed before any is written, so a broken
    /// file stops the whole wiring with nothing changed.
    pub fn wire(
        &self,
        target: Target,
        params: &Params,
        dry_run: bool,
    ) -> Result<Report, WiringError> {
        let _lock = self.lock(dry_run)?;
        let plans = self.plan(target, params)?;
        self.apply_plans(target, params, dry_run, &plans)
    }

    /// Serialises every change to Claude's files and `wiring.json` — the CLI's, the dashboard's,
    /// the watcher's, in this process or another — with an advisory lock on
    /// `wiring.lock` in our home, held until the returned file is dropped. Without it, the
    /// watcher could re-apply our keys half-way through an `unwire` and record the target as
    /// wired again. A dry run changes nothing and takes no lock.
    fn lock(&self, dry_run: bool) -> Result<Option<std::fs::File>, WiringError> {
        if dry_run {
            return Ok(None);
        }
        let path = self.home.join("wiring.lock");
        std::fs::create_dir_all(&self.home).map_err(|e| WiringError::io(&self.home, e))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| WiringError::io(&path, e))?;
        file.lock().map_err(|e| WiringError::io(&path, e))?;
        Ok(Some(file))
    }

    /// [`Self::wire`] limited to `files` (the watcher re-applies only what was dropped, even when
    /// another file of the target is broken).
    pub fn wire_files(
        &self,
        target: Target,
        params: &Params,
        dry_run: bool,
        files: &[PathBuf],
    ) -> Result<Report, WiringError> {
        let _lock = self.lock(dry_run)?;
        // The target may have been unwired since the caller looked: then nothing is re-applied.
        if self.recorded(target)?.is_none() {
            return Ok(Report { files: Vec::new() });
        }
        let mut plans = self.plan(target, params)?;
        plans.retain(|plan| files.contains(&plan.path));
        self.apply_plans(target, params, dry_run, &plans)
    }

    fn apply_plans(
        &self,
        target: Target,
        params: &Params,
        dry_run: bool,
        plans: &[plan::FilePlan],
    ) -> Result<Report, WiringError> {
        for plan in plans {
            if let Some(text) = file::read(&plan.path)? {
                file::parse(&plan.path, &text)?;
            }
        }
        let mut state = State::load(&self.home)?;
        // Every edit is computed once without writing, so a file of the wrong shape stops the
        // wiring before any file changes.
        let mut trial = state.clone();
        for plan in plans {
            let record = trial.targets.entry(target.name().to_owned()).or_default();
            let file_state = record.files.entry(plan.path.clone()).or_default();
            file::update(&plan.path, true, |doc| {
                plan::apply(doc, &plan.changes, file_state, &plan.path)
            })?;
        }
        if !dry_run {
            write_helper(&params.helper, &self.home, &params.key_id)?;
            let record = state.targets.entry(target.name().to_owned()).or_default();
            record.wired = true;
            record.url.clone_from(&params.url);
            record.key_id.clone_from(&params.key_id);
        }
        let mut report = Report { files: Vec::new() };
        for plan in plans {
            let record = state.targets.entry(target.name().to_owned()).or_default();
            let existed = plan.path.exists();
            let file_state = record
                .files
                .entry(plan.path.clone())
                .or_insert_with(|| FileState {
                    created: !existed,
                    priors: Vec::new(),
                });
            if !dry_run {
                // What the file holds now is recorded (and saved) before it changes: a crash
                // right after the write can still be undone (`apply` records a prior once).
                file::update(&plan.path, true, |doc| {
                    plan::apply(doc, &plan.changes, file_state, &plan.path)
                })?;
                state.save(&self.home)?;
            }
            let record = state.targets.entry(target.name().to_owned()).or_default();
            let file_state = record.files.entry(plan.path.clone()).or_default();
            let update = file::update(&plan.path, dry_run, |doc| {
                plan::apply(doc, &plan.changes, file_state, &plan.path)
            })?;
            // Saved after every file too (the applied state), so a failure half-way can still be
            // undone.
            if !dry_run {
                state.save(&self.home)?;
            }
            report.files.push((plan.path.clone(), update));
        }
        Ok(report)
    }

    /// Undoes `target`'s wiring: our values go, what was there before comes back, files we
    /// created and left empty are deleted, `deploymentMode` becomes `1p` where we set it.
    pub fn unwire(&self, target: Target, dry_run: bool) -> Result<Report, WiringError> {
        let _lock = self.lock(dry_run)?;
        let mut state = State::load(&self.home)?;
        let Some(record) = state.targets.get_mut(target.name()) else {
            return Ok(Report { files: Vec::new() });
        };
        for path in record.files.keys() {
            if let Some(text) = file::read(path)? {
                file::parse(path, &text)?;
            }
        }
        let mut report = Report { files: Vec::new() };
        for (path, file_state) in &record.files {
            if !path.exists() {
                continue;
            }
            let mut empty = false;
            let update = file::update(path, dry_run, |doc| {
                plan::revert(doc, file_state, path)?;
                empty = doc
                    .node(&[])
                    .and_then(|n| n.members())
                    .is_some_and(<[_]>::is_empty);
                Ok(())
            })?;
            if file_state.created && empty && !dry_run {
                std::fs::remove_file(path).map_err(|e| WiringError::io(path, e))?;
            }
            report.files.push((path.clone(), update));
        }
        if !dry_run {
            for path in record.files.keys() {
                file::scrub_backups(path);
            }
            state.targets.remove(target.name());
            state.save(&self.home)?;
        }
        Ok(report)
    }

    /// How each file of `target`'s plan looks now.
    pub fn status(
        &self,
        target: Target,
        params: &Params,
    ) -> Result<Vec<(PathBuf, FileStatus)>, WiringError> {
        let mut out = Vec::new();
        for plan in self.plan(target, params)? {
            let parsed = file::read(&plan.path)
                .and_then(|text| text.map(|text| file::parse(&plan.path, &text)).transpose());
            let status = match parsed {
                Ok(None) => FileStatus::Missing,
                Ok(Some(doc)) => FileStatus::Parsed {
                    wired: plan::applied(&doc, &plan.changes),
                },
                Err(WiringError::Syntax {
                    line,
                    column,
                    message,
                    ..
                }) => FileStatus::Broken(line, column, message),
                Err(e) => return Err(e),
            };
            out.push((plan.path, status));
        }
        Ok(out)
    }

    /// Where the credential helper lives in `home`.
    pub fn helper_path(home: &Path) -> PathBuf {
        let name = if cfg!(windows) {
            "credential-helper.cmd"
        } else {
            "credential-helper"
        };
        home.join("bin").join(name)
    }
}

/// Writes the credential helper Claude runs with no arguments: it calls `<exe> credential
/// --key-id ID` with our home, and prints only the key.
fn write_helper(helper: &Path, home: &Path, key_id: &str) -> Result<(), WiringError> {
    let exe = std::env::current_exe().map_err(|e| WiringError::io(Path::new("current_exe"), e))?;
    let script = helper_script(&exe, home, key_id);
    if std::fs::read_to_string(helper).ok().as_deref() == Some(script.as_str()) {
        return Ok(());
    }
    file::write_atomic(helper, script.as_bytes(), 0o700)
}

fn helper_script(exe: &Path, home: &Path, key_id: &str) -> String {
    if cfg!(windows) {
        format!(
            "@echo off\r\nset \"MOE_SOVEREIGN_HOME={}\"\r\n\"{}\" credential --key-id {key_id}\r\n",
            home.display(),
            exe.display()
        )
    } else {
        let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
        format!(
            "#!/bin/sh\n# Written by `moe-sovereign wire`: Claude runs this for the gateway key.\nMOE_SOVEREIGN_HOME={}\nexport MOE_SOVEREIGN_HOME\nexec {} credential --key-id {}\n",
            quote(&home.to_string_lossy()),
            quote(&exe.to_string_lossy()),
            quote(key_id)
        )
    }
}

#[cfg(test)]
mod tests;
