use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn fact(s: &str, r: &str, o: &str) -> Fact {
    Fact {
        subject: s.to_owned(),
        relation: r.to_owned(),
        object: o.to_owned(),
    }
}

fn prov(key: &str, at: u64) -> Provenance {
    Provenance {
        key_id: key.to_owned(),
        request_id: Some(format!("req-{at}")),
        at,
    }
}

fn store() -> Result<(tempfile::TempDir, Graph), GraphError> {
    let dir = tempfile::tempdir().map_err(|source| GraphError::Io {
        path: PathBuf::from("tempdir"),
        source,
    })?;
    let graph = Graph::open(&dir.path().join("graph.db"))?;
    Ok((dir, graph))
}

fn triples(facts: &[StoredFact]) -> Vec<(&str, &str, &str)> {
    facts
        .iter()
        .map(|f| (f.subject.as_str(), f.relation.as_str(), f.object.as_str()))
        .collect()
}

/// Facts unrelated to the test at hand, so BM25 has document frequencies to work with.
fn filler(graph: &Graph, key: &str) -> Result<(), GraphError> {
    let facts: Vec<Fact> = (0..20)
        .map(|i| fact(&format!("filler{i}"), "relates to", &format!("thing{i}")))
        .collect();
    graph.add(&facts, &prov(key, 1))?;
    Ok(())
}

#[test]
fn graph_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Graph>();
}

#[test]
fn add_dedups_and_counts_seen() -> TestResult {
    let (_dir, graph) = store()?;
    let f = fact("Rust", "is", "a language");
    assert_eq!(
        graph.add(&[f.clone(), fact("Go", "is", "a language")], &prov("a", 10))?,
        2
    );
    assert_eq!(graph.add(std::slice::from_ref(&f), &prov("a", 20))?, 0);
    assert_eq!(graph.add(&[f.clone(), f], &prov("a", 30))?, 0);
    assert_eq!(graph.count(Some("a"))?, 2);
    let rust = graph.list(Some("a"), 10)?;
    let rust = rust.iter().find(|f| f.subject == "Rust").ok_or("missing")?;
    assert_eq!(rust.seen, 4);
    // Provenance stays that of the first sighting.
    assert_eq!(rust.created, 10);
    assert_eq!(rust.request_id.as_deref(), Some("req-10"));
    assert_eq!(rust.key_id, "a");
    Ok(())
}

#[test]
fn merge_normalizes_and_ignores_case() -> TestResult {
    let (_dir, graph) = store()?;
    let long = "x".repeat(300);
    let added = graph.add(
        &[
            fact("  Project   Shield ", "USES\t", "\nX7"),
            fact("project shield", "uses", "x7"),
            fact("ÖLFELD", "liegt in", "Bayern"),
            fact("ölfeld", "LIEGT IN", "bayern"),
            fact("", "is", "empty"),
            fact("blank", " \t ", "relation"),
            fact(&long, "is", "long"),
        ],
        &prov("a", 1),
    )?;
    assert_eq!(added, 3);
    let facts = graph.list(Some("a"), 10)?;
    let shield = facts
        .iter()
        .find(|f| f.relation == "USES")
        .ok_or("missing")?;
    assert_eq!(
        (shield.subject.as_str(), shield.object.as_str()),
        ("Project Shield", "X7")
    );
    assert_eq!(shield.seen, 2);
    let oel = facts
        .iter()
        .find(|f| f.subject == "ÖLFELD")
        .ok_or("missing")?;
    assert_eq!(oel.seen, 2);
    let long = facts.iter().find(|f| f.object == "long").ok_or("missing")?;
    assert_eq!(long.subject.chars().count(), MAX_FIELD_CHARS);
    Ok(())
}

#[test]
fn search_ranks_more_matching_terms_first() -> TestResult {
    let (_dir, graph) = store()?;
    filler(&graph, "a")?;
    graph.add(
        &[
            fact("gateway", "runs on", "kestrel"),
            fact("gateway", "logs to", "falcon"),
            fact("kestrel", "talks to", "falcon"),
        ],
        &prov("a", 2),
    )?;
    let hits = graph.search(Some("a"), "Which kestrel uses falcon?", 10)?;
    assert_eq!(hits.len(), 3);
    assert_eq!(triples(&hits[..1]), [("kestrel", "talks to", "falcon")]);
    assert_eq!(graph.search(Some("a"), "kestrel falcon", 1)?.len(), 1);
    assert!(graph.search(Some("a"), "kestrel", 0)?.is_empty());
    Ok(())
}

#[test]
fn search_stems_and_folds_diacritics() -> TestResult {
    let (_dir, graph) = store()?;
    graph.add(
        &[
            fact("firewall", "opens", "port 22"),
            fact("office", "is in", "Zürich"),
        ],
        &prov("a", 1),
    )?;
    assert_eq!(
        triples(&graph.search(Some("a"), "ports", 5)?),
        [("firewall", "opens", "port 22")]
    );
    assert_eq!(
        triples(&graph.search(Some("a"), "opening", 5)?),
        [("firewall", "opens", "port 22")]
    );
    assert_eq!(
        triples(&graph.search(Some("a"), "ZURICH", 5)?),
        [("office", "is in", "Zürich")]
    );
    Ok(())
}

#[test]
fn hostile_queries_never_error() -> TestResult {
    let (_dir, graph) = store()?;
    graph.add(&[fact("near", "and", "not or")], &prov("a", 1))?;
    let big = "lorem \"ipsum\" * NEAR( ) ^ - + : {col} ".repeat(300);
    assert!(big.len() > 10_000);
    let hostile = [
        "\"",
        "*",
        "NEAR(",
        "NEAR(a b, 3)",
        "AND OR NOT",
        ")",
        "",
        "   ",
        "(((",
        "a:b",
        "subject:x",
        "^start",
        "-x",
        "x*",
        "'; DROP TABLE fact; --",
        "\u{0}",
        "ünïcödé 東京 🚀 مرحبا",
        "\u{301}\u{301}",
        "ab\u{301}",
        "²³ ⅫⅫ",
        &big,
    ];
    for query in hostile {
        graph.search(Some("a"), query, 10)?;
        graph.search(None, query, 10)?;
        graph.context("a", query, 1000)?;
    }
    // Every kind of character, in pairs so each survives the two-character minimum.
    let mut all = String::new();
    for c in (0..0x3_0000).filter_map(char::from_u32).step_by(7) {
        all.push(c);
        all.push(c);
        all.push(' ');
        if all.len() > 60 {
            graph.search(Some("a"), &all, 10)?;
            all.clear();
        }
    }
    // Operators are searched as words, not parsed.
    assert_eq!(graph.search(Some("a"), "NEAR(", 10)?.len(), 1);
    Ok(())
}

fn shield(graph: &Graph, key: &str) -> Result<(), GraphError> {
    filler(graph, key)?;
    graph.add(
        &[
            fact("Project Shield", "uses", "X7"),
            fact("x7", "listens on", "port 9977"),
            fact("Port 9977", "belongs to", "firewall zone B"),
            fact("firewall zone B", "is managed by", "Team Orca"),
            fact("Lunch", "is served at", "noon"),
        ],
        &prov(key, 2),
    )?;
    Ok(())
}

#[test]
fn context_follows_two_hops() -> TestResult {
    let (_dir, graph) = store()?;
    shield(&graph, "a")?;
    let (text, n) = graph.context("a", "What does Project Shield do?", 10_000)?;
    assert_eq!(
        text,
        "- Project Shield — uses — X7\n\
         - x7 — listens on — port 9977\n\
         - Port 9977 — belongs to — firewall zone B"
    );
    assert_eq!(n, 3);
    assert_eq!(
        graph.context("a", "the of and", 10_000)?,
        (String::new(), 0)
    );
    assert_eq!(
        graph.context("a", "unknownword", 10_000)?,
        (String::new(), 0)
    );
    Ok(())
}

#[test]
fn context_cut_keeps_whole_lines() -> TestResult {
    let (_dir, graph) = store()?;
    shield(&graph, "a")?;
    let first = "- Project Shield — uses — X7";
    let two = "- Project Shield — uses — X7\n- x7 — listens on — port 9977";
    let len = |s: &str| s.chars().count();
    assert_eq!(
        graph.context("a", "Project Shield", len(two))?,
        (two.to_owned(), 2)
    );
    assert_eq!(
        graph.context("a", "Project Shield", len(two) - 1)?,
        (first.to_owned(), 1)
    );
    assert_eq!(
        graph.context("a", "Project Shield", len(first))?,
        (first.to_owned(), 1)
    );
    assert_eq!(
        graph.context("a", "Project Shield", len(first) - 1)?,
        (String::new(), 0)
    );
    Ok(())
}

#[test]
fn keys_are_isolated() -> TestResult {
    let (_dir, graph) = store()?;
    shield(&graph, "a")?;
    graph.add(&[fact("X7", "is owned by", "key b")], &prov("b", 3))?;

    assert!(graph.search(Some("b"), "Project Shield", 10)?.is_empty());
    assert_eq!(graph.search(None, "Project Shield", 10)?.len(), 1);
    // B's own fact about X7 never pulls in A's hops, and A's context never shows B's fact.
    let (text, n) = graph.context("b", "X7", 10_000)?;
    assert_eq!((text.as_str(), n), ("- X7 — is owned by — key b", 1));
    assert!(
        !graph
            .context("a", "Project Shield", 10_000)?
            .0
            .contains("key b")
    );
    assert!(graph.list(Some("b"), 100)?.iter().all(|f| f.key_id == "b"));
    assert_eq!(graph.list(None, 100)?.len(), 26);

    let a_fact = graph.search(Some("a"), "Project Shield", 1)?.remove(0);
    assert!(!graph.forget(a_fact.id, Some("b"))?);
    assert_eq!(graph.count(Some("a"))?, 25);
    assert!(graph.forget(a_fact.id, Some("a"))?);
    assert!(!graph.forget(a_fact.id, Some("a"))?);
    assert_eq!(graph.count(Some("a"))?, 24);
    assert!(graph.search(Some("a"), "Project Shield", 10)?.is_empty());
    Ok(())
}

#[test]
fn forget_all_by_key_leaves_other_keys() -> TestResult {
    let (_dir, graph) = store()?;
    shield(&graph, "a")?;
    shield(&graph, "b")?;
    assert_eq!(graph.forget_all(Some("a"))?, 25);
    assert_eq!(graph.count(Some("a"))?, 0);
    assert_eq!(graph.count(Some("b"))?, 25);
    assert!(graph.search(Some("a"), "Project Shield", 10)?.is_empty());
    assert_eq!(graph.context("b", "Project Shield", 10_000)?.1, 3);
    assert_eq!(graph.forget_all(None)?, 25);
    assert_eq!(graph.count(None)?, 0);
    Ok(())
}

#[test]
fn list_is_newest_first() -> TestResult {
    let (_dir, graph) = store()?;
    graph.add(&[fact("a", "b", "old")], &prov("k", 5))?;
    graph.add(
        &[fact("a", "b", "new1"), fact("a", "b", "new2")],
        &prov("k", 9),
    )?;
    graph.add(&[fact("a", "b", "middle")], &prov("k", 7))?;
    let objects: Vec<String> = graph
        .list(Some("k"), 3)?
        .into_iter()
        .map(|f| f.object)
        .collect();
    assert_eq!(objects, ["new2", "new1", "middle"]);
    Ok(())
}

#[test]
fn oldest_facts_are_evicted_beyond_the_cap() -> TestResult {
    let (_dir, graph) = store()?;
    let batch = |from: u64, to: u64| -> Vec<Fact> {
        (from..to)
            .map(|i| fact(&format!("s{i}"), "r", "o"))
            .collect()
    };
    graph.add_capped(&batch(0, 4), &prov("a", 100), 5)?;
    graph.add_capped(&batch(0, 3), &prov("b", 50), 5)?;
    // Older by timestamp, so these go first although inserted last.
    assert_eq!(graph.add_capped(&batch(10, 12), &prov("a", 90), 5)?, 2);
    assert_eq!(graph.count(Some("a"))?, 5);
    assert_eq!(graph.add_capped(&batch(4, 7), &prov("a", 200), 5)?, 3);
    let subjects: Vec<String> = graph
        .list(Some("a"), 10)?
        .into_iter()
        .map(|f| f.subject)
        .collect();
    assert_eq!(subjects, ["s6", "s5", "s4", "s3", "s2"]);
    assert_eq!(graph.count(Some("b"))?, 3);
    assert!(graph.search(Some("a"), "s10 s11 s0", 10)?.is_empty());
    Ok(())
}

#[test]
fn eviction_at_the_real_cap() -> TestResult {
    let (_dir, graph) = store()?;
    let facts: Vec<Fact> = (0..MAX_FACTS_PER_KEY + 10)
        .map(|i| fact(&format!("s{i}"), "r", &format!("o{}", i / 100)))
        .collect();
    assert_eq!(graph.add(&facts, &prov("a", 1))?, MAX_FACTS_PER_KEY + 10);
    assert_eq!(graph.count(Some("a"))?, MAX_FACTS_PER_KEY as u64);
    assert!(graph.search(Some("a"), "s9", 10)?.is_empty());
    assert_eq!(graph.search(Some("a"), "s10", 10)?.len(), 1);
    Ok(())
}

#[test]
fn reopen_persists() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("graph.db");
    {
        let graph = Graph::open(&path)?;
        shield(&graph, "a")?;
    }
    let graph = Graph::open(&path)?;
    assert_eq!(graph.count(Some("a"))?, 25);
    assert_eq!(graph.context("a", "Project Shield", 10_000)?.1, 3);
    assert_eq!(
        graph.add(&[fact("Project Shield", "uses", "x7")], &prov("a", 3))?,
        0
    );
    Ok(())
}

#[test]
fn newer_schema_and_bad_paths_are_errors() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("graph.db");
    drop(Graph::open(&path)?);
    Connection::open(&path)?.pragma_update(None, "user_version", 99)?;
    let err = Graph::open(&path).err().ok_or("opened a newer schema")?;
    assert!(
        matches!(err, GraphError::Version { found: 99, .. }),
        "{err}"
    );

    let missing = dir.path().join("no such dir").join("graph.db");
    let err = Graph::open(&missing)
        .err()
        .ok_or("opened in a missing dir")?
        .to_string();
    assert!(err.contains("no such dir") && !err.contains('\n'), "{err}");
    Ok(())
}

#[cfg(unix)]
#[test]
fn files_are_private() -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("graph.db");
    let graph = Graph::open(&path)?;
    graph.add(&[fact("a", "b", "c")], &prov("k", 1))?;
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.path().join(format!("graph.db{suffix}"));
        let mode = std::fs::metadata(&file)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    drop(graph);
    // An existing store that is too open is narrowed.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    drop(Graph::open(&path)?);
    assert_eq!(
        std::fs::metadata(&path)?.permissions().mode() & 0o777,
        0o600
    );
    Ok(())
}

/// The database file and its WAL, checkpointed first so both reflect what the store holds.
fn file_bytes(graph: &Graph, path: &Path) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    graph
        .lock()
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    let mut bytes = std::fs::read(path)?;
    let wal = path.with_file_name("graph.db-wal");
    if wal.exists() {
        bytes.extend(std::fs::read(wal)?);
    }
    Ok(bytes.to_ascii_lowercase())
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn forgotten_facts_leave_the_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("graph.db");
    let graph = Graph::open(&path)?;
    shield(&graph, "a")?;
    shield(&graph, "b")?;
    let secrets = [
        fact("Quetzalwombat", "guards", "vault Zyxwerbloom"),
        fact("Plumbifrax", "owes", "Dravenquill"),
    ];
    graph.add(&secrets, &prov("a", 5))?;
    shield(&graph, "c")?;
    let words = ["quetzalwombat", "zyxwerbloom", "plumbifrax", "dravenquill"];
    // The control: before forgetting, the words are there (lowercased: a case-folded match).
    let bytes = file_bytes(&graph, &path)?;
    assert!(words.iter().all(|w| contains(&bytes, w)));

    let id = graph.search(Some("a"), "Quetzalwombat", 1)?.remove(0).id;
    assert!(graph.forget(id, None)?);
    let bytes = file_bytes(&graph, &path)?;
    assert!(!contains(&bytes, "quetzalwombat") && !contains(&bytes, "zyxwerbloom"));
    assert!(contains(&bytes, "plumbifrax"));

    // A fact still only in the WAL when forgotten: forget itself must clear the WAL.
    let wal_path = path.with_file_name("graph.db-wal");
    graph.add(&[fact("Snorkelgrumpet", "is", "fresh")], &prov("a", 6))?;
    assert!(contains(
        &std::fs::read(&wal_path)?.to_ascii_lowercase(),
        "snorkelgrumpet"
    ));
    assert!(graph.forget(
        graph.search(Some("a"), "Snorkelgrumpet", 1)?.remove(0).id,
        None
    )?);
    assert!(!contains(
        &std::fs::read(&wal_path)?.to_ascii_lowercase(),
        "snorkelgrumpet"
    ));

    assert_eq!(graph.forget_all(Some("a"))?, 26);
    let bytes = file_bytes(&graph, &path)?;
    assert!(!contains(&bytes, "plumbifrax") && !contains(&bytes, "dravenquill"));
    // Other keys' facts are still there, and searchable.
    assert!(contains(&bytes, "shield"));
    assert_eq!(graph.context("c", "Project Shield", 10_000)?.1, 3);
    Ok(())
}

#[test]
fn hop_query_looks_facts_up_by_index() -> TestResult {
    let (_dir, graph) = store()?;
    shield(&graph, "a")?;
    let conn = graph.lock();
    let mut plan = conn.prepare(&format!("EXPLAIN QUERY PLAN {HOPS}"))?;
    let steps = plan.query_map(params!["a", "[1]", 10], |r| r.get::<_, String>(3))?;
    let steps: Vec<String> = steps.collect::<Result<_, _>>()?;
    // Scans are of the CTEs and the id list only; every access to `fact` is a search.
    assert!(
        steps
            .iter()
            .filter(|s| s.contains(" f "))
            .all(|s| s.starts_with("SEARCH"))
    );
    assert!(!steps.iter().any(|s| s.starts_with("SCAN f")), "{steps:#?}");
    Ok(())
}
