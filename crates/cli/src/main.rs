//! `moe-sovereign`: the gateway and its management commands.

mod doctor;
mod graph;
mod keys;
mod models;
mod ui;
mod wire;

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
    /// Point Claude Desktop or Claude Code at the gateway (backup, merge, 0600).
    Wire(wire::WireArgs),
    /// Undo `wire`: our keys go, what was there before comes back.
    Unwire(wire::UnwireArgs),
    /// Check files, keychain, models, the gateway and Claude's wiring.
    Doctor {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// What moe_orchestrated has learnt, per key: list, search, forget.
    #[command(subcommand)]
    Graph(graph::GraphCommand),
    /// Open the dashboard of the running gateway (a one-time login link).
    Ui {
        /// Print the link instead of opening a browser.
        #[arg(long)]
        no_open: bool,
    },
}

fn main() -> ExitCode {
    if let Some(missing) = moe_sovereign_runtime::missing_cpu_features() {
        eprintln!(
            "moe-sovereign: this build uses x86-64-v3 instructions for fast local inference, and this CPU lacks {missing}; \
             build it for a baseline CPU with RUSTFLAGS=\"-C target-cpu=x86-64\" (local models run 3-7x slower)"
        );
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            listen,
            config,
            allow_remote,
        } => serve(listen, config, allow_remote),
        Command::Keys(command) => keys::keys(command),
        Command::Graph(command) => graph::graph(command),
        Command::Credential { key_id } => keys::credential(key_id.as_deref()),
        Command::Profiles(command) => keys::profiles(command),
        Command::Models(command) => models::models(command),
        Command::Wire(args) => wire::wire(args),
        Command::Unwire(args) => wire::unwire(args),
        Command::Doctor { json } => doctor::doctor(json),
        Command::Ui { no_open } => ui::ui(no_open),
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
    let home = Home::locate()?;
    moe_sovereign_runtime::logging::init(&home);
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
                ..ServeOptions::default()
            },
        )
        .await?;
        if server.expert_count() == 0 {
            tracing::warn!(
                "no model yet: requests are refused until you register one. Online: `moe-sovereign models pull` fetches \
                 the default small model (SmolLM2-135M-Instruct, ~90 MiB). Offline: `moe-sovereign models add FILE.gguf` \
                 with a GGUF chat model you have; or add an [[experts]] entry for a model server to {}",
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
