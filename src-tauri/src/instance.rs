//! One tray app per home folder. The single-instance plugin hands a second launch to the first
//! over D-Bus (which then shows its window); without a session bus it lets both run, so a lock
//! file in the home folder decides as well — and tells a second tray apart from a
//! `moe-sovereign serve` holding the port.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;

/// The held lock; released when the process ends.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

/// Why the lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another tray app runs for this home (its process id, if it wrote one).
    Held(Option<u32>),
    /// The lock file could not be opened.
    Io(std::io::Error),
}

/// Takes `home/desktop.lock` and writes our process id into it.
pub fn acquire(home: &Path) -> Result<InstanceLock, LockError> {
    std::fs::create_dir_all(home).map_err(LockError::Io)?;
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(home.join("desktop.lock"))
        .map_err(LockError::Io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(LockError::Held(text.trim().parse().ok()));
        }
        Err(std::fs::TryLockError::Error(error)) => return Err(LockError::Io(error)),
    }
    file.set_len(0).map_err(LockError::Io)?;
    file.rewind().map_err(LockError::Io)?;
    write!(file, "{}", std::process::id()).map_err(LockError::Io)?;
    file.flush().map_err(LockError::Io)?;
    Ok(InstanceLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let home = tempfile::tempdir().unwrap();
        let first = acquire(home.path()).unwrap();
        match acquire(home.path()) {
            Err(LockError::Held(pid)) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected Held, got {other:?}"),
        }
        drop(first);
        assert!(acquire(home.path()).is_ok());
    }
}
