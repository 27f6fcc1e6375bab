//! The one way this crate changes a file: read → parse (never write what does not parse) →
//! edit → timestamped backup → temp file, fsync, rename, fsync the folder → mode 0600.
//! A crash at any point leaves either the old or the new file.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use moe_sovereign_keys::redact_keys;

use crate::WiringError;
use crate::json::Document;

/// Backups kept per file (oldest removed first).
const BACKUPS_KEPT: usize = 10;

/// A file's current text: `None` when it does not exist.
pub fn read(path: &Path) -> Result<Option<String>, WiringError> {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|e| WiringError::Syntax {
                path: path.to_owned(),
                line: 1,
                column: 1,
                message: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(WiringError::io(path, e)),
    }
}

/// Parses `text` read from `path`.
pub fn parse(path: &Path, text: &str) -> Result<Document, WiringError> {
    Document::parse(text).map_err(|e| WiringError::Syntax {
        path: path.to_owned(),
        line: e.line,
        column: e.column,
        message: e.message,
    })
}

/// The result of [`update`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The text before (`None`: the file did not exist).
    pub before: Option<String>,
    /// The text after.
    pub after: String,
    /// Where the old text was saved, when the file changed.
    pub backup: Option<PathBuf>,
}

impl Update {
    /// Whether anything changed.
    pub fn changed(&self) -> bool {
        self.before.as_deref() != Some(self.after.as_str())
    }
}

/// Applies `edit` to the JSON file at `path` (absent: an empty object) and writes it back safely
/// when the text changed. `dry_run` computes without touching the disk.
pub fn update(
    path: &Path,
    dry_run: bool,
    edit: impl FnOnce(&mut Document) -> Result<(), WiringError>,
) -> Result<Update, WiringError> {
    let before = read(path)?;
    let mut doc = parse(path, before.as_deref().unwrap_or(""))?;
    edit(&mut doc)?;
    let after = match &before {
        // An absent file gets a trailing newline like any editor would write.
        None if !doc.text().ends_with('\n') => format!("{}\n", doc.text()),
        _ => doc.text().to_owned(),
    };
    let mut update = Update {
        before,
        after,
        backup: None,
    };
    if update.changed() && !dry_run {
        if let Some(old) = &update.before {
            update.backup = Some(backup(path, old)?);
        }
        write_atomic(path, update.after.as_bytes(), 0o600)?;
    }
    Ok(update)
}

/// Replaces the text of `path` (which was `before`; `None`: absent) with `after` by the same
/// rules as every write here: the old text backed up beside it, an atomic write, mode 0600.
/// Returns the backup's path.
pub fn replace_with_backup(
    path: &Path,
    before: Option<&str>,
    after: &str,
) -> Result<Option<PathBuf>, WiringError> {
    let backup = before.map(|old| backup(path, old)).transpose()?;
    write_atomic(path, after.as_bytes(), 0o600)?;
    Ok(backup)
}

/// Saves `text` as `<name>.moe-backup-<UTC timestamp>` beside `path` (0600) and prunes old ones.
/// A backup keeps the user's content, never one of our keys: each is replaced by
/// [`moe_sovereign_keys::REDACTED_KEY`] (restoring a wired file wires it again with a live key),
/// also in older backups still holding one.
fn backup(path: &Path, text: &str) -> Result<PathBuf, WiringError> {
    let name = file_name(path);
    let stamp = timestamp();
    let mut target = path.with_file_name(format!("{name}.moe-backup-{stamp}"));
    let mut n = 1;
    while target.exists() {
        n += 1;
        target = path.with_file_name(format!("{name}.moe-backup-{stamp}-{n}"));
    }
    write_atomic(&target, redact_keys(text).as_bytes(), 0o600)?;
    prune_backups(path);
    scrub_backups(path);
    Ok(target)
}

/// Replaces our keys in every backup of `path` (see [`backup`]); how many backups changed.
pub fn scrub_backups(path: &Path) -> usize {
    backups(path)
        .iter()
        .filter(|backup| {
            let Ok(Some(text)) = read(backup) else {
                return false;
            };
            let scrubbed = redact_keys(&text);
            matches!(scrubbed, std::borrow::Cow::Owned(_))
                && write_atomic(backup, scrubbed.as_bytes(), 0o600).is_ok()
        })
        .count()
}

fn prune_backups(path: &Path) {
    if let Some(dir) = path.parent() {
        // Each backup has a name of its own: a crashed one is swept here, not by the next.
        moe_sovereign_files::sweep_folder(dir, &format!("{}.moe-backup-", file_name(path)));
    }
    let backups = backups(path);
    for old in backups.iter().skip(BACKUPS_KEPT) {
        let _ = fs::remove_file(old);
    }
}

/// The backups of `path` (`<name>.moe-backup-*` beside it), newest first.
pub fn backups(path: &Path) -> Vec<PathBuf> {
    let Some(dir) = path.parent() else {
        return Vec::new();
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let prefix = format!("{}.moe-backup-", file_name(path));
    let mut backups: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
        })
        .collect();
    // `<stamp>Z` or `<stamp>Z-<n>` (a second backup within the same millisecond): timestamps
    // sort lexically, then the serial number.
    backups.sort_by_key(|p| {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        let suffix = name
            .as_deref()
            .and_then(|n| n.strip_prefix(&prefix))
            .unwrap_or("");
        let (stamp, serial) = suffix.split_once("Z-").unwrap_or((suffix, "1"));
        (
            stamp.trim_end_matches('Z').to_owned(),
            serial.parse::<u32>().unwrap_or(1),
        )
    });
    backups.reverse();
    backups
}

/// Puts `backup` (one of [`backups`] of `path`) back in place of `path`, by the usual rules: it
/// must parse, the current text is backed up first, the write is atomic, mode 0600. Returns the
/// backup of what was there.
pub fn restore_backup(path: &Path, backup: &Path) -> Result<Option<PathBuf>, WiringError> {
    if !backups(path).iter().any(|b| b == backup) {
        return Err(WiringError::io(
            backup,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("not a backup of {}", path.display()),
            ),
        ));
    }
    let text = read(backup)?.unwrap_or_default();
    parse(backup, &text)?;
    let current = read(path)?;
    replace_with_backup(path, current.as_deref(), &text)
}

/// Writes `bytes` to `path` through a temp file in the same folder: fsync, set `mode`, rename,
/// fsync the folder. Creates missing folders.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), WiringError> {
    moe_sovereign_files::write_atomic(path, bytes, mode).map_err(|e| WiringError::io(path, e))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into())
}

/// `YYYYMMDDTHHMMSSZ` (UTC), plus milliseconds so quick successive backups sort.
fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        now.subsec_millis()
    )
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_file_that_does_not_parse_is_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        fs::write(&path, "{\n  \"a\": 1,,\n}").unwrap();
        let error = update(&path, false, |d| {
            d.set(&["x"], &json!(1))
                .map_err(|e| WiringError::shape(&path, e))
        })
        .unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("settings.json") && message.contains("line 2, column 10"),
            "{message}"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\n  \"a\": 1,,\n}");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no backup, no temp file"
        );
    }

    #[test]
    fn changes_are_backed_up_and_written_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        fs::write(&path, "{\"a\": 1}").unwrap();
        let done = update(&path, false, |d| {
            d.set(&["b"], &json!(2))
                .map_err(|e| WiringError::shape(&path, e))
        })
        .unwrap();
        let backup = done.backup.unwrap();
        assert_eq!(fs::read_to_string(&backup).unwrap(), "{\"a\": 1}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\"a\": 1,\"b\": 2}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Unchanged → no write, no backup.
        let again = update(&path, false, |d| {
            d.set(&["b"], &json!(2))
                .map_err(|e| WiringError::shape(&path, e))
        })
        .unwrap();
        assert!(!again.changed() && again.backup.is_none());
    }

    #[test]
    fn backups_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        for n in 0..(BACKUPS_KEPT + 5) {
            fs::write(&path, format!("{{\"n\": {n}}}")).unwrap();
            update(&path, false, |d| {
                d.set(&["n"], &json!(-1))
                    .map_err(|e| WiringError::shape(&path, e))
            })
            .unwrap();
        }
        let backups = fs::read_dir(dir.path()).unwrap().count() - 1;
        assert_eq!(backups, BACKUPS_KEPT);
    }

    #[test]
    fn backups_list_newest_first_and_restore_only_their_own_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        fs::write(&path, "{\"n\": 0}").unwrap();
        for n in 1..=3 {
            update(&path, false, |d| {
                d.set(&["n"], &json!(n))
                    .map_err(|e| WiringError::shape(&path, e))
            })
            .unwrap();
        }
        let list = backups(&path);
        let texts: Vec<String> = list
            .iter()
            .map(|b| fs::read_to_string(b).unwrap())
            .collect();
        assert_eq!(texts, ["{\"n\": 2}", "{\"n\": 1}", "{\"n\": 0}"]);
        let saved = restore_backup(&path, &list[2]).unwrap().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\"n\": 0}");
        assert_eq!(fs::read_to_string(saved).unwrap(), "{\"n\": 3}");
        // Not a backup of this file, or one that does not parse: refused, nothing changes.
        let other = dir.path().join("d.json.moe-backup-20260101T000000.000Z");
        fs::write(&other, "{}").unwrap();
        assert!(restore_backup(&path, &other).is_err());
        fs::write(&list[0], "{broken").unwrap();
        assert!(restore_backup(&path, &list[0]).is_err());
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\"n\": 0}");
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_416), (2025, 11, 24));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
