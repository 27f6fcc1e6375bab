//! `wire` / `unwire`: point Claude Desktop or Claude Code at the gateway, and undo it.

use clap::{Args, ValueEnum};
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
    let target = Target::from(args.client);
    let wired = wiring::wire(
        &home,
        &config,
        target,
        args.url.as_deref(),
        args.key_id.as_deref(),
        args.dry_run,
    )
    .map_err(anyhow::Error::msg)?;
    if wired.created_key {
        let keys = home.keys(home.secret_store(config.secret_store));
        eprintln!(
            "created key {} (profile moe_native) in the {}",
            wired.key_id,
            keys.secrets().describe()
        );
    }
    print_report(&wired.report, args.dry_run, &wired.key);
    if !args.dry_run {
        let url = &wired.url;
        eprintln!("{target} now uses {url} with key {}", wired.key_id);
        match target {
            Target::ClaudeDesktop => eprintln!(
                "quit and reopen Claude Desktop to load it; `moe-sovereign serve` keeps the wiring in place, `moe-sovereign unwire claude-desktop` undoes it"
            ),
            Target::ClaudeCode => eprintln!(
                "new `claude` sessions use it; `moe-sovereign unwire claude-code` undoes it"
            ),
        }
        if let Some(live) = home.live_url()
            && live != *url
        {
            eprintln!(
                "warning: the running gateway listens at {live}, not {url}; Claude will reach it once a gateway serves {url} (the address in config.toml)"
            );
        }
    }
    Ok(())
}

pub fn unwire(args: UnwireArgs) -> anyhow::Result<()> {
    let home = Home::locate()?;
    let target = Target::from(args.client);
    let report = wiring::unwire(&home, target, args.dry_run).map_err(anyhow::Error::msg)?;
    if report.files.is_empty() {
        eprintln!(
            "{target} is not wired by moe-sovereign (nothing recorded in {}); nothing to undo",
            wiring::wiring(&home)?.state_path().display()
        );
        return Ok(());
    }
    print_report(&report, args.dry_run, "");
    if !args.dry_run {
        eprintln!("{target} no longer uses the gateway; everything else in its files is as it was");
    }
    Ok(())
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
