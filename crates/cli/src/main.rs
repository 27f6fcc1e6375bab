//! `moe-sovereign`: the gateway and its management commands.

mod keys;
mod models;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use moe_sovereign_runtime::{Home, ServeOptions, config};

#[derive(Debug, Parser)]
#[command(
    name = "moe-sovereign",
    version,
    about = "Your own Anthropic-compatible gateway, on loopback"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway in the foreground.
    Serve {
        /// Address to listen on (`127.0.0.1:0` picks a free port).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Config file (default: $MOE_SOVEREIGN_HOME/config.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Allow a non-loopback listen address (auth stays on).
        #[arg(long)]
        allow_remote: bool,
    },
    /// Manage API keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Print the active key from the keychain (for Claude's apiKeyHelper / credential helper).
    Credential {
        /// Which key (default: the default key).
        #[arg(long)]
        key_id: Option<String>,
    },
    /// Show or switch the profile of a key.
    #[command(subcommand)]
    Profiles(keys::ProfilesCommand),
    /// Manage local GGUF models.
    #[command(subcommand)]
    Models(models::ModelsCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            listen,
            config,
            allow_remote,
        } => serve(listen, config, allow_remote),
        Command::Keys(command) => keys::keys(command),
        Command::Credential { key_id } => keys::credential(key_id.as_deref()),
        Command::Profiles(command) => keys::profiles(command),
        Command::Models(command) => models::models(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let message = format!("{error:#}");
            eprintln!("moe-sovereign: {}", message.replace('\n', "\n  "));
            ExitCode::FAILURE
        }
    }
}

fn serve(
    listen: Option<SocketAddr>,
    config_path: Option<PathBuf>,
    allow_remote: bool,
) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let home = Home::locate()?;
    let config_path = config_path.unwrap_or_else(|| home.config_path());
    let config = config::load(&config_path)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = moe_sovereign_runtime::start(
            &home,
            &config,
            &ServeOptions {
                listen,
                allow_remote,
            },
        )
        .await?;
        if server.expert_count() == 0 {
            tracing::warn!(
                "no model yet: requests are refused until you register one. Offline: `moe-sovereign models add FILE.gguf` \
                 with a GGUF chat model you have (e.g. SmolLM2-135M-Instruct); or add an [[experts]] entry for a model server to {}",
                config_path.display()
            );
        }
        if server.key_count() == 0 {
            tracing::warn!(
                "no API key exists yet: create one with `moe-sovereign keys create --profile moe_native`"
            );
        }
        println!("listening on http://{}", server.addr());
        server.run_until_signal(Duration::from_secs(10)).await?;
        anyhow::Ok(())
    })
}
