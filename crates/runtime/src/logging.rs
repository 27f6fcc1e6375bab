//! The gateway's log: stderr and a daily-rotated file in the home folder (`logs/`, a week
//! kept), which `serve` and the tray write and the dashboard's Logs page reads. Nothing logged
//! anywhere in the program carries a key value or prompt text.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::Home;

/// Log files kept.
const KEPT: usize = 7;

/// The log folder.
pub fn dir(home: &Home) -> PathBuf {
    home.dir().join("logs")
}

/// Installs the global subscriber: `RUST_LOG` (default `info`) to stderr and to the log file.
/// A log folder that cannot be made only loses the file.
pub fn init(home: &Home) {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(filter());
    // Made first: the appender prunes old files at start and complains when there is no folder.
    let _ = std::fs::create_dir_all(dir(home));
    let file = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix("gateway")
        .filename_suffix("log")
        .max_log_files(KEPT)
        .build(dir(home))
        .ok()
        .map(|appender| {
            tracing_subscriber::fmt::layer()
                .with_writer(appender)
                .with_ansi(false)
                .with_filter(filter())
        });
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
}

/// One line of the log.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Line {
    /// `ERROR`, `WARN`, `INFO`, `DEBUG`, `TRACE` (empty for a continuation line).
    pub level: String,
    /// The whole line.
    pub text: String,
}

const LEVELS: [&str; 5] = ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"];

/// The newest `limit` lines at `min_level` or more severe (all levels when `None`), newest first,
/// from the newest files.
pub fn tail(home: &Home, min_level: Option<&str>, limit: usize) -> Vec<Line> {
    let rank = |level: &str| LEVELS.iter().position(|l| *l == level);
    let floor = min_level.and_then(|l| rank(&l.to_ascii_uppercase()));
    let mut files = log_files(&dir(home));
    files.sort();
    let mut lines = Vec::new();
    for file in files.iter().rev() {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for raw in text.lines().rev() {
            let level = raw
                .split_whitespace()
                .nth(1)
                .filter(|t| rank(t).is_some())
                .unwrap_or("");
            let keep = match (floor, rank(level)) {
                (None, _) => true,
                (Some(floor), Some(rank)) => rank <= floor,
                (Some(_), None) => false,
            };
            if keep {
                lines.push(Line {
                    level: level.to_owned(),
                    text: raw.to_owned(),
                });
                if lines.len() == limit {
                    return lines;
                }
            }
        }
    }
    lines
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("gateway"))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_first_filtered_by_level_across_files() {
        let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let home = Home::at(home.path().to_owned());
        let logs = dir(&home);
        std::fs::create_dir_all(&logs).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            logs.join("gateway.2026-12-01.log"),
            "2026-12-01T10:00:00Z  INFO a: old info\n2026-12-01T10:00:01Z ERROR a: old error\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            logs.join("gateway.2026-12-02.log"),
            "2026-12-02T10:00:00Z  WARN a: new warning\n2026-12-02T10:00:01Z DEBUG a: new debug\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let texts = |lines: Vec<Line>| lines.into_iter().map(|l| l.text).collect::<Vec<_>>();
        let all = texts(tail(&home, None, 10));
        assert_eq!(all.len(), 4);
        assert!(
            all[0].ends_with("new debug") && all[3].ends_with("old info"),
            "{all:?}"
        );
        let warn = texts(tail(&home, Some("warn"), 10));
        assert_eq!(warn.len(), 2);
        assert!(warn[0].ends_with("new warning") && warn[1].ends_with("old error"));
        assert_eq!(tail(&home, None, 1).len(), 1);
    }
}
