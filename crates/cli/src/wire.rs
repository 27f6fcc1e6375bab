//! `wire` / `unwire`: point Claude Desktop or Claude Code at the gateway, and undo it.

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use moe_sovereign_keys::KeyManager;
use moe_sovereign_runtime::{Home, config, wiring};
use moe_sovereign_wiring::{Report, Target};

/// Which client.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Client {
    /// Claude Desktop (Cowork and its embedded Claude Code).
    ClaudeDesktop,
    /// The Claude Code CLI.
    ClaudeCode,
}

impl From<Client> for Target {
    fn from(client: Client) -> Self {
        match client {
            Client::ClaudeDesktop => Target::ClaudeDesktop,
            Client::ClaudeCode => Target::ClaudeCode,
        }
    }
}

#[derive(Debug, Args)]
pub struct WireArgs {
    /// claude-desktop or claude-code.
    client: Client,
    /// The gateway URL (default: from config, http://127.0.0.1:8742).
    #[arg(long)]
    url: Option<String>,
    /// The key Claude uses (default: the default key; one is created when none exists).
    #[arg(long)]
    key_id: Option<String>,
    /// Print the changes (key masked) without writing anything.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
pub struct UnwireArgs {
    /// claude-desktop or claude-code.
    client: Client,
    /// Print the changes without writing anything.
    #[arg(long)]
    dry_run: bool,
}

pub fn wire(args: WireArgs) -> anyhow::Result<()> {
    let home = Home::locate()?;
    let config = config::load(&home.config_path())?;
    let keys = home.keys(home.secret_store(config.secret_store));
    let target = Target::from(args.client);
    let url = match &args.url {
        Some(url) => wiring::normalize_url(url).map_err(anyhow::Error::msg)?,
        None => wiring::url_for(config.listen),
    };
    let key_id = key_id(&keys, args.key_id.as_deref(), args.dry_run)?;
    let params = wiring::params(&home, &keys, &url, &key_id).map_err(anyhow::Error::msg)?;
    let report = wiring::wiring(&home)?
        .wire(target, &params, args.dry_run)
        .with_context(|| format!("cannot wire {target}"))?;
    print_report(&report, args.dry_run, &params.key);
    if !args.dry_run {
        eprintln!("{target} now uses {url} with key {key_id}");
        match target {
            Target::ClaudeDesktop => eprintln!(
                "quit and reopen Claude Desktop to load it; `moe-sovereign serve` keeps the wiring in place, `moe-sovereign unwire claude-desktop` undoes it"
            ),
            Target::ClaudeCode => eprintln!(
                "new `claude` sessions use it; `moe-sovereign unwire claude-code` undoes it"
            ),
        }
    }
    Ok(())
}

pub fn unwire(args: UnwireArgs) -> anyhow::Result<()> {
    let home = Home::locate()?;
    let target = Target::from(args.client);
    let wiring = wiring::wiring(&home)?;
    let report = wiring
        .unwire(target, args.dry_run)
        .with_context(|| format!("cannot unwire {target}"))?;
    if report.files.is_empty() {
        eprintln!(
            "{target} is not wired by moe-sovereign (nothing recorded in {}); nothing to undo",
            wiring.state_path().display()
        );
        return Ok(());
    }
    print_report(&report, args.dry_run, "");
    if !args.dry_run {
        eprintln!("{target} no longer uses the gateway; everything else in its files is as it was");
    }
    Ok(())
}

/// The key to wire: the one asked for, else the default, else a new `moe_native` key.
fn key_id(keys: &KeyManager, asked: Option<&str>, dry_run: bool) -> anyhow::Result<String> {
    if let Some(id) = asked {
        return Ok(id.to_owned());
    }
    let file = keys.load()?;
    if let Some(id) = file.default_key {
        return Ok(id);
    }
    if dry_run {
        bail!("no API key exists yet; `wire` without --dry-run creates one");
    }
    let issued = keys.create("moe_native", Some("claude"))?;
    eprintln!(
        "created key {} (profile moe_native) in the {}",
        issued.record.id,
        keys.secrets().describe()
    );
    Ok(issued.record.id)
}

/// One line per file; with `--dry-run`, a unified diff with the key masked.
fn print_report(report: &Report, dry_run: bool, key: &str) {
    for (path, update) in &report.files {
        let path = path.display();
        if !update.changed() {
            eprintln!("unchanged {path}");
            continue;
        }
        if dry_run {
            let before = update.before.as_deref().unwrap_or("");
            let diff = similar::TextDiff::from_lines(before, &update.after);
            let mut text = diff
                .unified_diff()
                .context_radius(2)
                .header(&format!("{path}"), &format!("{path}"))
                .to_string();
            if !key.is_empty() {
                text = text.replace(key, "moe-sk-••••");
            }
            print!("{text}");
            continue;
        }
        match (&update.before, &update.backup) {
            _ if !std::path::Path::new(&path.to_string()).exists() => eprintln!("removed {path}"),
            (None, _) => eprintln!("created {path}"),
            (Some(_), Some(backup)) => {
                eprintln!("updated {path} (backup: {})", backup.display())
            }
            (Some(_), None) => eprintln!("updated {path}"),
        }
    }
}
