//! `models`: the local model registry.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use moe_sovereign_local::{ModelEntry, Registry};
use moe_sovereign_runtime::Home;
use moe_sovereign_runtime::models::PullEvent;

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Register a GGUF file (validated first; the file stays where it is).
    Add {
        /// The .gguf file.
        file: PathBuf,
        /// Name to refer to it by (default: the file name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Download a GGUF file from Hugging Face (or `HF_ENDPOINT`), verify it and register it.
    /// Resumes an interrupted download. Without REPO: the default small model, SmolLM2-135M-Instruct.
    Pull {
        /// `owner/name` of the repository.
        repo: Option<String>,
        /// Which file (default: the only GGUF file, or the Q4_K_M one).
        #[arg(long)]
        file: Option<String>,
        /// Name to refer to it by (default: the file name).
        #[arg(long)]
        name: Option<String>,
    },
    /// List registered models.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Forget a model (the file is left alone).
    Remove {
        /// The model's name.
        name: String,
    },
}

fn report_added(entry: &ModelEntry) {
    eprintln!(
        "added {} ({}, {}, {}, context {})",
        entry.name,
        entry.architecture,
        entry.quantization,
        mib(entry.size),
        entry
            .context_length
            .map_or("unknown".into(), |c| c.to_string())
    );
    if let Some(copy) = &entry.engine_path {
        eprintln!(
            "{} has no fast CPU kernel in the engine: it runs from a Q8_0 copy ({}), about 1.4x faster",
            entry.quantization,
            copy.display()
        );
    }
}

/// The quantization column: what the file has, and what the engine runs when it differs.
fn quant_label(entry: &ModelEntry) -> String {
    match entry.engine_path {
        Some(_) => format!("{}>Q8_0", entry.quantization),
        None => entry.quantization.clone(),
    }
}

/// `models pull`, with a progress bar on a terminal and a line per 10% otherwise.
fn pull(
    home: &Home,
    repo: Option<&str>,
    file: Option<&str>,
    name: Option<&str>,
) -> anyhow::Result<ModelEntry> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut bar: Option<ProgressBar> = None;
    let mut reported = 0;
    let result = runtime.block_on(moe_sovereign_runtime::models::pull(
        home,
        repo,
        file,
        name,
        |event| match event {
            PullEvent::Resolved(remote) => {
                eprintln!(
                    "pulling {}/{} ({}, sha256 {})",
                    remote.repo,
                    remote.file,
                    mib(remote.size),
                    &remote.sha256[..12.min(remote.sha256.len())]
                );
                if std::io::stderr().is_terminal() {
                    let progress = ProgressBar::new(remote.size);
                    if let Ok(style) = ProgressStyle::with_template(
                        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                    ) {
                        progress.set_style(style);
                    }
                    bar = Some(progress);
                }
            }
            PullEvent::Progress { done, total } => match &bar {
                Some(bar) => bar.set_position(done),
                None => {
                    let tenth = done * 10 / total.max(1);
                    if tenth > reported {
                        reported = tenth;
                        eprintln!("{}% ({} of {})", tenth * 10, mib(done), mib(total));
                    }
                }
            },
            PullEvent::Verified(path) => {
                if let Some(bar) = bar.take() {
                    bar.finish_and_clear();
                }
                eprintln!("verified {}", path.display());
            }
        },
    ));
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    result.map_err(anyhow::Error::msg)
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub fn models(command: ModelsCommand) -> anyhow::Result<()> {
    let home = Home::locate()?;
    let registry = Registry::new(home.dir());
    match command {
        ModelsCommand::Add { file, name } => {
            let entry = registry.add(&file, name.as_deref())?;
            report_added(&entry);
        }
        ModelsCommand::Pull { repo, file, name } => {
            let entry = pull(&home, repo.as_deref(), file.as_deref(), name.as_deref())?;
            report_added(&entry);
        }
        ModelsCommand::List { json } => {
            let models = registry.list()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&models)?);
            } else if models.is_empty() {
                eprintln!("no models yet: `moe-sovereign models add FILE.gguf`");
            } else {
                let mut out = std::io::stdout().lock();
                writeln!(
                    out,
                    "{:<28} {:<10} {:<10} {:>9} {:>8}  PATH",
                    "NAME", "ARCH", "QUANT", "SIZE", "CONTEXT"
                )?;
                for m in models {
                    writeln!(
                        out,
                        "{:<28} {:<10} {:<10} {:>9} {:>8}  {}",
                        m.name,
                        m.architecture,
                        quant_label(&m),
                        mib(m.size),
                        m.context_length.map_or("?".into(), |c| c.to_string()),
                        m.path.display()
                    )?;
                }
            }
        }
        ModelsCommand::Remove { name } => {
            let entry = registry.remove(&name)?;
            eprintln!(
                "removed {} ({} is left in place)",
                entry.name,
                entry.path.display()
            );
        }
    }
    Ok(())
}
