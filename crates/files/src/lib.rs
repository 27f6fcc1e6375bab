//! The one way the project writes a file: the new content goes to a temp file in the same
//! folder, is synced, gets its mode, and is renamed over the old file; then the folder is
//! synced so the rename itself survives a power cut. A crash at any point leaves the old file
//! or the new one, never a mix; a full disk leaves the old one and an error.
//!
//! Temp files are named `.<name>.<random>.tmp`: [`sweep_temp_files`] removes the ones a crash
//! left behind.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use tempfile::NamedTempFile;

/// Writes `bytes` to `path` atomically with permissions `mode` (Unix; ignored elsewhere, where
/// files under the user's profile are private already). Creates missing folders.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut temp = temp_beside(path)?;
    temp.write_all(bytes)?;
    persist(temp, path, mode)?;
    sweep_temp_files(path);
    Ok(())
}

/// A temp file in `path`'s folder (created if missing) to stream a large new version of
/// `path` into; [`persist`] puts it in place.
pub fn temp_beside(path: &Path) -> io::Result<NamedTempFile> {
    let dir = folder(path);
    fs::create_dir_all(dir)?;
    tempfile::Builder::new()
        .prefix(&format!(".{}.", file_name(path)))
        .suffix(".tmp")
        .tempfile_in(dir)
}

/// Syncs `temp` (from [`temp_beside`]), gives it `mode`, renames it to `path`, syncs the
/// folder.
pub fn persist(temp: NamedTempFile, path: &Path, mode: u32) -> io::Result<()> {
    temp.as_file().sync_all()?;
    set_mode(temp.path(), mode)?;
    temp.persist(path).map_err(|e| e.error)?;
    sync_folder(folder(path));
    Ok(())
}

/// Renames a complete, synced file `from` to `to` (same folder) and syncs the folder.
pub fn rename_durable(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to)?;
    sync_folder(folder(to));
    Ok(())
}

/// Removes temp files of `path` that a crashed write left in its folder (older than a minute,
/// so a write in progress in another process keeps its own); how many went.
pub fn sweep_temp_files(path: &Path) -> usize {
    sweep_folder(folder(path), &format!("{}.", file_name(path)))
}

/// The same for the temp files in `dir` of every file whose name starts with `prefix` (`""`:
/// all of them) — for files named once each (backups, converted models), whose crashed write
/// the next write, to another name, would not sweep.
pub fn sweep_folder(dir: &Path, prefix: &str) -> usize {
    sweep(dir, &format!(".{prefix}"))
}

/// True when `path` was last changed a minute ago or more.
pub fn is_stale(path: &Path) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age.as_secs() >= 60)
}

fn sweep(dir: &Path, prefix: &str) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with(prefix) && n.ends_with(".tmp")
            })
        })
        .filter(|p| is_stale(p))
        .filter(|p| fs::remove_file(p).is_ok())
        .count()
}

fn folder(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> io::Result<()> {
    Ok(())
}

fn sync_folder(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_whole_with_the_mode_and_leave_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/a.json");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.json"]);
    }

    #[test]
    fn a_write_that_fails_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomic(&path, b"old", 0o600).unwrap();
        // The target is a folder now: the rename fails, the temp file goes with the error.
        let folder = dir.path().join("b");
        fs::create_dir(&folder).unwrap();
        fs::write(folder.join("x"), "keep").unwrap();
        assert!(write_atomic(&folder, b"new", 0o600).is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn the_sweep_removes_old_temp_files_of_that_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        let old = dir.path().join(".a.json.x1.tmp");
        let fresh = dir.path().join(".a.json.x2.tmp");
        let other = dir.path().join(".b.json.x3.tmp");
        for p in [&old, &fresh, &other] {
            fs::write(p, "").unwrap();
        }
        let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for p in [&old, &other] {
            fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }
        assert_eq!(sweep_temp_files(&path), 1);
        assert!(!old.exists() && fresh.exists() && other.exists());
    }
}
