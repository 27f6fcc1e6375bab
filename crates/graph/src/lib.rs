//! The per-key knowledge graph of the orchestrated profile.
//!
//! After an answer, a model extracts (subject, relation, object) facts; [`Graph::add`] merges
//! them with their provenance, and later requests of the same API key get related facts back
//! from [`Graph::context`]: keyword hits ranked by BM25, plus the facts within two hops of the
//! entities of those hits. Every read and write names its key, so keys never see each other's
//! facts; the admin (CLI) calls alone may pass `None` for all keys.
//!
//! # Schema (version 1, in `PRAGMA user_version`)
//!
//! - `fact`: one row per fact and key. The display text is kept as first seen; the `*_norm`
//!   columns hold its lowercase form, and `UNIQUE(key_id, subject_norm, relation_norm,
//!   object_norm)` makes a repeated fact bump `seen` instead of adding a row (that index also
//!   serves hops by subject; `fact_key_object` serves hops by object, `fact_key_created` listing
//!   and eviction). `AUTOINCREMENT` keeps the id of a forgotten fact from being reused, so a
//!   stale id in a dashboard cannot delete a newer fact.
//! - `fact_fts`: an FTS5 external-content index over subject, relation and object, kept in sync
//!   by triggers (the update trigger fires only when the text changes, not on `seen`). Its
//!   tokenizer is `porter unicode61 remove_diacritics 2`, so "ports" finds "port" and "Zürich"
//!   finds "zurich".
//!
//! # Forgetting
//!
//! Forgotten facts must not linger in the file. `PRAGMA secure_delete` zeroes deleted rows and
//! freed pages, but an FTS5 delete by default only appends a tombstone and leaves the terms in
//! the old index segments until a merge; the index is therefore created with FTS5's
//! `secure-delete` option, which removes them from the segments. After a forget, the WAL is
//! checkpointed and truncated so no old page images of the fact stay in `-wal` either.

mod terms;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, Row, TransactionBehavior, params};

/// The most facts one key keeps; [`Graph::add`] evicts the oldest beyond it.
pub const MAX_FACTS_PER_KEY: usize = 10_000;

/// Longest subject, relation or object kept, in characters.
const MAX_FIELD_CHARS: usize = 200;
/// How many keyword hits seed [`Graph::context`].
const CONTEXT_HITS: usize = 8;
/// Most hop facts [`Graph::context`] reads, whatever `max_chars` allows.
const CONTEXT_HOP_FACTS: i64 = 200;
/// The schema this build writes and reads.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS fact (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    relation TEXT NOT NULL,
    object TEXT NOT NULL,
    subject_norm TEXT NOT NULL,
    relation_norm TEXT NOT NULL,
    object_norm TEXT NOT NULL,
    request_id TEXT,
    created INTEGER NOT NULL,
    seen INTEGER NOT NULL DEFAULT 1,
    UNIQUE (key_id, subject_norm, relation_norm, object_norm)
);
CREATE INDEX IF NOT EXISTS fact_key_object ON fact (key_id, object_norm, subject_norm);
CREATE INDEX IF NOT EXISTS fact_key_created ON fact (key_id, created, id);
CREATE VIRTUAL TABLE IF NOT EXISTS fact_fts USING fts5 (
    subject, relation, object,
    content = 'fact', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
INSERT INTO fact_fts (fact_fts, rank) VALUES ('secure-delete', 1);
CREATE TRIGGER IF NOT EXISTS fact_ai AFTER INSERT ON fact BEGIN
    INSERT INTO fact_fts (rowid, subject, relation, object)
    VALUES (new.id, new.subject, new.relation, new.object);
END;
CREATE TRIGGER IF NOT EXISTS fact_ad AFTER DELETE ON fact BEGIN
    INSERT INTO fact_fts (fact_fts, rowid, subject, relation, object)
    VALUES ('delete', old.id, old.subject, old.relation, old.object);
END;
CREATE TRIGGER IF NOT EXISTS fact_au AFTER UPDATE OF subject, relation, object ON fact BEGIN
    INSERT INTO fact_fts (fact_fts, rowid, subject, relation, object)
    VALUES ('delete', old.id, old.subject, old.relation, old.object);
    INSERT INTO fact_fts (rowid, subject, relation, object)
    VALUES (new.id, new.subject, new.relation, new.object);
END;
";

/// The columns [`stored_fact`] reads, in order, from a table aliased `f`.
const COLUMNS: &str =
    "f.id, f.key_id, f.subject, f.relation, f.object, f.request_id, f.created, f.seen";

/// The facts of key ?1 within two hops of the facts whose ids are in the JSON array ?2 (those
/// excluded), nearest first, at most ?3. Entities at depth 0 are the subjects and objects of
/// the hits, at depth 1 those one fact away; a fact touching either is within two hops.
/// `CROSS JOIN` pins the join order, so each step looks entities up by index instead of
/// scanning the key's facts per entity (without `ANALYZE` statistics the planner guesses).
const HOPS: &str = "
WITH RECURSIVE
hit (id) AS (SELECT value FROM json_each(?2)),
entity (name, depth) AS (
    SELECT f.subject_norm, 0 FROM hit CROSS JOIN fact f ON f.id = hit.id WHERE f.key_id = ?1
    UNION
    SELECT f.object_norm, 0 FROM hit CROSS JOIN fact f ON f.id = hit.id WHERE f.key_id = ?1
    UNION
    SELECT f.object_norm, e.depth + 1 FROM entity e
        CROSS JOIN fact f ON f.key_id = ?1 AND f.subject_norm = e.name WHERE e.depth < 1
    UNION
    SELECT f.subject_norm, e.depth + 1 FROM entity e
        CROSS JOIN fact f ON f.key_id = ?1 AND f.object_norm = e.name WHERE e.depth < 1
),
near (name, depth) AS (SELECT name, min(depth) FROM entity GROUP BY name),
reach (id, hop) AS (
    SELECT f.id, n.depth FROM near n
        CROSS JOIN fact f ON f.key_id = ?1 AND f.subject_norm = n.name
    UNION ALL
    SELECT f.id, n.depth FROM near n
        CROSS JOIN fact f ON f.key_id = ?1 AND f.object_norm = n.name
)
SELECT f.id, f.key_id, f.subject, f.relation, f.object, f.request_id, f.created, f.seen,
       min(r.hop) AS hop
FROM reach r CROSS JOIN fact f ON f.id = r.id
WHERE r.id NOT IN hit
GROUP BY f.id
ORDER BY hop, f.seen DESC, f.created DESC, f.id DESC
LIMIT ?3";

/// One (subject, relation, object) triple, as a model extracted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    /// The entity the fact is about.
    pub subject: String,
    /// How the subject relates to the object.
    pub relation: String,
    /// The other entity, or a value.
    pub object: String,
}

/// Where merged facts come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// The API key that owns the facts.
    pub key_id: String,
    /// The request whose answer they were extracted from, if known.
    pub request_id: Option<String>,
    /// When, in unix seconds.
    pub at: u64,
}

/// A fact as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFact {
    /// Row id, stable and never reused; what [`Graph::forget`] takes.
    pub id: i64,
    /// The owning API key.
    pub key_id: String,
    /// Subject, normalized, as first seen.
    pub subject: String,
    /// Relation, normalized, as first seen.
    pub relation: String,
    /// Object, normalized, as first seen.
    pub object: String,
    /// The request it was first extracted from.
    pub request_id: Option<String>,
    /// When it was first stored, unix seconds.
    pub created: u64,
    /// How many times it was extracted (1 when new).
    pub seen: u64,
}

/// Errors of the knowledge graph.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// The store file could not be created or its permissions set.
    #[error("knowledge graph {}: {source}", path.display())]
    Io {
        /// The store file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// SQLite could not open or prepare the store.
    #[error("cannot open knowledge graph {}: {source}", path.display())]
    Open {
        /// The store file.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// The store was written by a newer build.
    #[error(
        "knowledge graph {} has schema version {found}; this build reads up to {SCHEMA_VERSION}",
        path.display()
    )]
    Version {
        /// The store file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
    },
    /// A query failed.
    #[error("knowledge graph query failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// The knowledge graph store: one SQLite file, shared by all keys, every query scoped to one.
#[derive(Debug)]
pub struct Graph {
    conn: Mutex<Connection>,
}

impl Graph {
    /// Opens the store at `path`, creating the file (mode 0600 on unix, and an existing file is
    /// narrowed to it) and the schema if missing. The parent directory must exist. The store
    /// runs in WAL mode with `secure_delete` on, so forgotten facts do not linger in the file.
    /// A store written by a newer schema version is refused.
    pub fn open(path: &Path) -> Result<Self, GraphError> {
        restrict_file(path)?;
        let open_err = |source| GraphError::Open {
            path: path.to_owned(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_err)?;
        // The pragma answers with the mode now in force; WAL is a preference, not a need.
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        conn.execute_batch("PRAGMA secure_delete = ON; PRAGMA synchronous = NORMAL;")
            .map_err(open_err)?;
        // Immediate: two processes creating the schema at once take turns (busy_timeout).
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(open_err)?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(open_err)?;
        if version > SCHEMA_VERSION {
            return Err(GraphError::Version {
                path: path.to_owned(),
                found: version,
            });
        }
        if version < SCHEMA_VERSION {
            tx.execute_batch(SCHEMA).map_err(open_err)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(open_err)?;
        }
        tx.commit().map_err(open_err)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// Merges facts for `provenance.key_id`: each field trimmed, whitespace collapsed, capped at
    /// 200 characters; facts with an empty field are skipped; a duplicate (same key, same
    /// subject/relation/object compared case-insensitively) is not inserted again but its `seen`
    /// counter is incremented. One transaction. Returns how many new facts were stored. A key
    /// keeps at most [`MAX_FACTS_PER_KEY`] facts: the oldest are evicted beyond that.
    pub fn add(&self, facts: &[Fact], provenance: &Provenance) -> Result<usize, GraphError> {
        self.add_capped(facts, provenance, MAX_FACTS_PER_KEY)
    }

    /// [`Graph::add`] with the per-key cap as a parameter, so tests need not write 10k rows.
    fn add_capped(
        &self,
        facts: &[Fact],
        provenance: &Provenance,
        cap: usize,
    ) -> Result<usize, GraphError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut added = 0;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO fact (key_id, subject, relation, object, subject_norm, relation_norm,
                                   object_norm, request_id, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT DO NOTHING",
            )?;
            let mut bump = tx.prepare_cached(
                "UPDATE fact SET seen = seen + 1
                 WHERE key_id = ?1 AND subject_norm = ?2 AND relation_norm = ?3
                   AND object_norm = ?4",
            )?;
            for fact in facts {
                let (s, r, o) = (
                    normalize(&fact.subject),
                    normalize(&fact.relation),
                    normalize(&fact.object),
                );
                if s.is_empty() || r.is_empty() || o.is_empty() {
                    continue;
                }
                // SQLite's lower() folds ASCII only; Rust's folds all of Unicode.
                let (sn, rn, on) = (s.to_lowercase(), r.to_lowercase(), o.to_lowercase());
                let key = &provenance.key_id;
                let (request, at) = (&provenance.request_id, to_i64(provenance.at));
                if insert.execute(params![key, s, r, o, sn, rn, on, request, at])? == 1 {
                    added += 1;
                } else {
                    bump.execute(params![key, sn, rn, on])?;
                }
            }
        }
        tx.execute(
            "DELETE FROM fact WHERE id IN (
                 SELECT id FROM fact WHERE key_id = ?1 ORDER BY created, id
                 LIMIT max(0, (SELECT count(*) FROM fact WHERE key_id = ?1) - ?2))",
            params![provenance.key_id, to_i64(cap)],
        )?;
        tx.commit()?;
        Ok(added)
    }

    /// Facts matching `query` ranked by FTS5 bm25 (best first), at most `limit`; `key_id` `None`
    /// searches all keys (CLI admin use), `Some` only that key. The query is free text: only its
    /// letter/digit terms (length >= 2, lowercase, no stop words, at most 12) are used, each
    /// quoted and OR-ed, so no input can inject FTS5 syntax. No usable terms → empty.
    pub fn search(
        &self,
        key_id: Option<&str>,
        query: &str,
        limit: usize,
    ) -> Result<Vec<StoredFact>, GraphError> {
        let Some(fts) = terms::fts_query(query) else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM fact_fts JOIN fact f ON f.id = fact_fts.rowid
             WHERE fact_fts MATCH ?1 AND (?2 IS NULL OR f.key_id = ?2)
             ORDER BY bm25(fact_fts), f.id LIMIT ?3"
        ))?;
        let rows = stmt.query_map(params![fts, key_id, to_i64(limit)], stored_fact)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Context for a model: the facts of `key_id` matching `query` (best 8 by bm25), then the
    /// facts within two hops of those hits' subjects and objects (case-insensitive), nearest and
    /// most seen first, without duplicates. Rendered one per line as
    /// `- {subject} — {relation} — {object}` and cut, at whole lines, to at most `max_chars`
    /// characters. Returns the text and how many facts it holds. Never crosses keys.
    pub fn context(
        &self,
        key_id: &str,
        query: &str,
        max_chars: usize,
    ) -> Result<(String, usize), GraphError> {
        let hits = self.search(Some(key_id), query, CONTEXT_HITS)?;
        if hits.is_empty() {
            return Ok((String::new(), 0));
        }
        // The ids are integers, so this JSON array needs no escaping.
        let ids: Vec<String> = hits.iter().map(|f| f.id.to_string()).collect();
        let ids = format!("[{}]", ids.join(","));
        let hops: Vec<StoredFact> = {
            let conn = self.lock();
            let mut stmt = conn.prepare_cached(HOPS)?;
            let rows = stmt.query_map(params![key_id, ids, CONTEXT_HOP_FACTS], stored_fact)?;
            rows.collect::<Result<_, _>>()?
        };
        let mut seen = HashSet::new();
        let mut text = String::new();
        let mut chars = 0;
        let mut count = 0;
        for fact in hits.iter().chain(&hops) {
            if !seen.insert(fact.id) {
                continue;
            }
            let line = format!("- {} — {} — {}", fact.subject, fact.relation, fact.object);
            let needed = line.chars().count() + usize::from(count > 0);
            if chars + needed > max_chars {
                break;
            }
            if count > 0 {
                text.push('\n');
            }
            text.push_str(&line);
            chars += needed;
            count += 1;
        }
        Ok((text, count))
    }

    /// Newest first (by created, then id), of one key when given, at most `limit`.
    pub fn list(&self, key_id: Option<&str>, limit: usize) -> Result<Vec<StoredFact>, GraphError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM fact f WHERE ?1 IS NULL OR f.key_id = ?1
             ORDER BY f.created DESC, f.id DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![key_id, to_i64(limit)], stored_fact)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes one fact by id (only if it belongs to `key_id` when given). True if deleted.
    pub fn forget(&self, id: i64, key_id: Option<&str>) -> Result<bool, GraphError> {
        let conn = self.lock();
        let n = conn.execute(
            "DELETE FROM fact WHERE id = ?1 AND (?2 IS NULL OR key_id = ?2)",
            params![id, key_id],
        )?;
        if n > 0 {
            scrub_wal(&conn)?;
        }
        Ok(n > 0)
    }

    /// Deletes all facts (of one key when given). Returns how many.
    pub fn forget_all(&self, key_id: Option<&str>) -> Result<usize, GraphError> {
        let conn = self.lock();
        let n = conn.execute(
            "DELETE FROM fact WHERE ?1 IS NULL OR key_id = ?1",
            params![key_id],
        )?;
        if n > 0 {
            scrub_wal(&conn)?;
        }
        Ok(n)
    }

    /// How many facts (of one key when given).
    pub fn count(&self, key_id: Option<&str>) -> Result<u64, GraphError> {
        let conn = self.lock();
        let n = conn.query_row(
            "SELECT count(*) FROM fact WHERE ?1 IS NULL OR key_id = ?1",
            params![key_id],
            |r| r.get(0),
        )?;
        Ok(to_u64(n))
    }

    /// The connection. A panic while it was held cannot leave a transaction open (rusqlite
    /// rolls back on drop), so a poisoned lock is still safe to use.
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Copies the WAL into the database and truncates it, so the page images of deleted facts do
/// not stay in `-wal`. Best effort: with another process reading, the checkpoint may stop
/// short, and the next one finishes it.
fn scrub_wal(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
}

/// Creates the store file with mode 0600, or narrows an existing one to it, before SQLite
/// opens it (SQLite gives `-wal` and `-shm` the database file's mode).
#[cfg(unix)]
fn restrict_file(path: &Path) -> Result<(), GraphError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io_err = |source| GraphError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io_err)?;
    let mode = file.metadata().map_err(io_err)?.permissions().mode();
    if mode & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))
            .map_err(io_err)?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict_file(_path: &Path) -> Result<(), GraphError> {
    Ok(())
}

/// Trims, collapses whitespace runs to one space and caps at [`MAX_FIELD_CHARS`] characters.
fn normalize(field: &str) -> String {
    let collapsed = field.split_whitespace().collect::<Vec<_>>().join(" ");
    match collapsed.char_indices().nth(MAX_FIELD_CHARS) {
        Some((cut, _)) => collapsed[..cut].trim_end().to_owned(),
        None => collapsed,
    }
}

/// SQLite integers are i64; the API counts in unsigned types. Values beyond range saturate
/// (they would need a clock 292 billion years out or a negative count, which is never written).
fn to_i64(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn stored_fact(row: &Row<'_>) -> rusqlite::Result<StoredFact> {
    Ok(StoredFact {
        id: row.get(0)?,
        key_id: row.get(1)?,
        subject: row.get(2)?,
        relation: row.get(3)?,
        object: row.get(4)?,
        request_id: row.get(5)?,
        created: to_u64(row.get(6)?),
        seen: to_u64(row.get(7)?),
    })
}

#[cfg(test)]
mod tests;
