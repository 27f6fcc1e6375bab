//! `keys`, `credential`, `profiles`.

use std::io::Write;

use anyhow::{Context, bail};
use clap::Subcommand;
use moe_sovereign_experts::Profile;
use moe_sovereign_keys::KeyManager;
use moe_sovereign_runtime::{Home, admin, config};
use serde_json::Value;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Issue a key bound to a profile; prints it once.
    Create {
        /// moe_native, moe_reasoning or moe_orchestrated.
        #[arg(long, default_value = "moe_native")]
        profile: String,
        /// A label.
        #[arg(long)]
        name: Option<String>,
    },
    /// List keys (never their values).
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: it stops working at once.
    Revoke {
        /// The key id.
        id: String,
    },
    /// Print a key's value from the keychain.
    Show {
        /// The key id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProfilesCommand {
    /// List profiles, the expert serving each, and the key's active one.
    List {
        /// Which key (default: the default key).
        #[arg(long)]
        key_id: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Make a profile the key's active one.
    Use {
        /// moe_native, moe_reasoning or moe_orchestrated.
        profile: String,
        /// Which key (default: the default key).
        #[arg(long)]
        key_id: Option<String>,
    },
}

fn manager() -> anyhow::Result<(Home, config::Config, KeyManager)> {
    let home = Home::locate()?;
    let config = config::load(&home.config_path())?;
    let keys = home.keys(home.secret_store(config.secret_store));
    Ok((home, config, keys))
}

fn parse_profile(text: &str) -> anyhow::Result<Profile> {
    match Profile::parse(text) {
        Some(profile) => Ok(profile),
        None => bail!(
            "unknown profile {text:?}: expected moe_native, moe_reasoning or moe_orchestrated"
        ),
    }
}

pub fn keys(command: KeysCommand) -> anyhow::Result<()> {
    let (home, _, keys) = manager()?;
    match command {
        KeysCommand::Create { profile, name } => {
            let profile = parse_profile(&profile)?;
            let issued = keys.create(profile.name(), name.as_deref())?;
            eprintln!(
                "created {} (profile {profile}); the key is shown once and kept in the {}:",
                issued.record.id,
                keys.secrets().describe()
            );
            println!("{}", issued.plaintext);
        }
        KeysCommand::List { json } => {
            let rows = admin::key_rows(&keys)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if rows.is_empty() {
                eprintln!("no keys yet: `moe-sovereign keys create --profile moe_native`");
            } else {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{:<14} {:<18} {:<18} DEFAULT", "ID", "NAME", "PROFILE")?;
                for row in rows {
                    writeln!(
                        out,
                        "{:<14} {:<18} {:<18} {}",
                        row["id"].as_str().unwrap_or(""),
                        row["name"].as_str().unwrap_or(""),
                        row["profile"].as_str().unwrap_or(""),
                        if row["default"] == true { "*" } else { "" }
                    )?;
                }
            }
        }
        KeysCommand::Revoke { id } => {
            let record = moe_sovereign_runtime::wiring::revoke_key(&home, &keys, &id)?;
            eprintln!("revoked {} ({})", record.id, record.name);
        }
        KeysCommand::Show { id } => {
            println!("{}", keys.reveal(Some(&id))?);
        }
    }
    Ok(())
}

pub fn credential(key_id: Option<&str>) -> anyhow::Result<()> {
    let (_, _, keys) = manager()?;
    let key = keys.reveal(key_id)?;
    println!("{key}");
    Ok(())
}

pub fn profiles(command: ProfilesCommand) -> anyhow::Result<()> {
    let (_, config, keys) = manager()?;
    match command {
        ProfilesCommand::List { key_id, json } => {
            let rows = admin::profile_rows(&config, &keys, key_id.as_deref())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                let mut out = std::io::stdout().lock();
                for row in rows {
                    let fallbacks: Vec<&str> = row["fallbacks"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    writeln!(
                        out,
                        "{} {:<17} {:<24} expert: {}{}",
                        if row["active"] == true { "*" } else { " " },
                        row["profile"].as_str().unwrap_or(""),
                        row["model_id"].as_str().unwrap_or(""),
                        row["expert"].as_str().unwrap_or("(none configured)"),
                        if fallbacks.is_empty() {
                            String::new()
                        } else {
                            format!(", then {}", fallbacks.join(", then "))
                        }
                    )?;
                }
            }
        }
        ProfilesCommand::Use { profile, key_id } => {
            let profile = parse_profile(&profile)?;
            let record = keys
                .set_profile(key_id.as_deref(), profile.name())
                .context("cannot switch profile")?;
            eprintln!("{} now uses {profile}", record.id);
        }
    }
    Ok(())
}
