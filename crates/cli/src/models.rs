//! `models`: the local model registry.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use moe_sovereign_local::Registry;
use moe_sovereign_runtime::Home;

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

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub fn models(command: ModelsCommand) -> anyhow::Result<()> {
    let home = Home::locate()?;
    let registry = Registry::new(home.dir());
    match command {
        ModelsCommand::Add { file, name } => {
            let entry = registry.add(&file, name.as_deref())?;
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
                    "{:<28} {:<10} {:<8} {:>9} {:>8}  PATH",
                    "NAME", "ARCH", "QUANT", "SIZE", "CONTEXT"
                )?;
                for m in models {
                    writeln!(
                        out,
                        "{:<28} {:<10} {:<8} {:>9} {:>8}  {}",
                        m.name,
                        m.architecture,
                        m.quantization,
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
