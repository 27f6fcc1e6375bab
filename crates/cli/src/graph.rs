//! `graph list|search|forget`: the knowledge graph `moe_orchestrated` keeps per key.

use std::io::Write;

use anyhow::bail;
use clap::Subcommand;
use moe_sovereign_runtime::{Home, config, knowledge};
use serde_json::Value;

#[derive(Debug, Subcommand)]
pub enum GraphCommand {
    /// The facts learnt, newest first.
    List {
        /// One key only.
        #[arg(long)]
        key_id: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = knowledge::DEFAULT_LIMIT)]
        limit: usize,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// The facts matching some words, best first.
    Search {
        /// The words.
        query: String,
        /// One key only.
        #[arg(long)]
        key_id: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Forget one fact (by id), or all of them with --all.
    Forget {
        /// The fact's id (`graph list`).
        id: Option<i64>,
        /// Every fact (of one key with --key-id).
        #[arg(long, conflicts_with = "id")]
        all: bool,
        /// With --all: only this key's facts.
        #[arg(long, requires = "all")]
        key_id: Option<String>,
    },
}

pub fn graph(command: GraphCommand) -> anyhow::Result<()> {
    let home = Home::locate()?;
    let config = config::load(&home.config_path())?;
    let keys = home.keys(home.secret_store(config.secret_store));
    let graph = knowledge::open(&home)?;
    match command {
        GraphCommand::List {
            key_id,
            limit,
            json,
        } => {
            let rows = knowledge::fact_rows(&graph, &keys, key_id.as_deref(), None, limit)?;
            print(
                &rows,
                json,
                "nothing learnt yet: moe_orchestrated answers teach it",
            )?;
        }
        GraphCommand::Search {
            query,
            key_id,
            json,
        } => {
            let rows = knowledge::fact_rows(
                &graph,
                &keys,
                key_id.as_deref(),
                Some(&query),
                knowledge::DEFAULT_LIMIT,
            )?;
            print(&rows, json, "no fact matches")?;
        }
        GraphCommand::Forget { id, all, key_id } => match (id, all) {
            (Some(id), false) => {
                if !graph.forget(id, None)? {
                    bail!("no fact with id {id} (see `moe-sovereign graph list`)");
                }
                eprintln!("forgot fact {id}");
            }
            (None, true) => {
                let count = graph.forget_all(key_id.as_deref())?;
                match key_id {
                    Some(key) => eprintln!("forgot {count} facts of {key}"),
                    None => eprintln!("forgot {count} facts"),
                }
            }
            _ => bail!("name a fact id, or --all"),
        },
    }
    Ok(())
}

fn print(rows: &[Value], json: bool, empty: &str) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        eprintln!("{empty}");
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{:<7} {:<14} {:>4}  FACT", "ID", "KEY", "SEEN")?;
    for row in rows {
        let text = |name: &str| row[name].as_str().unwrap_or("").to_owned();
        writeln!(
            out,
            "{:<7} {:<14} {:>4}  {} — {} — {}",
            row["id"],
            text("key_id"),
            row["seen"],
            text("subject"),
            text("relation"),
            text("object")
        )?;
    }
    Ok(())
}
