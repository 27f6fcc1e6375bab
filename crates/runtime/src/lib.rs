//! Composition: config + keys + experts → a running gateway; start, stop, graceful shutdown.
//! Shared by the CLI (`moe-sovereign serve`) and the tray app (`moe-sovereign-desktop`).
//!
//! Layout:
//! - [`home`]: the data folder (`MOE_SOVEREIGN_HOME`) and what lives in it;
//! - [`home_watch`]: changes to its files made by anyone (the routes and the tray follow);
//! - [`config`]: `config.toml`: raw schema → validated [`Config`], every problem at once;
//! - [`config_edit`]: binding a profile to an expert in `config.toml`, comments and order kept;
//! - [`auth`]: the gateway's key check over `keys.json`, reloaded when it changes;
//! - [`server`]: binds, serves, shuts down;
//! - [`routing`]: experts and the route table from config, rebuilt when a profile changes;
//! - [`wiring`]: Claude's wiring composed with config and keys, and its watcher in `serve`;
//! - [`admin`]: what the CLI, the dashboard and the tray list and change (keys, profiles, models,
//!   wiring state), and the dashboard's backend over it;
//! - [`doctor`]: every check, for `doctor` and the dashboard;
//! - [`models`]: pulling a model (download, verification, registration);
//! - [`logging`]: the log (stderr and a rotated file in the home folder) and reading it back.

pub mod admin;
pub mod auth;
pub mod config;
pub mod config_edit;
pub mod doctor;
pub mod home;
pub mod home_watch;
pub mod knowledge;
pub mod logging;
pub mod models;
pub mod routing;
pub mod server;
pub mod wiring;

pub use config::{Config, ConfigError, ExpertConfig, ExpertKind};
pub use home::Home;
pub use server::{RunningServer, ServeOptions, start};

/// Everything that can stop the runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Keys could not be read.
    #[error(transparent)]
    Keys(#[from] moe_sovereign_keys::KeyError),
    /// The home folder could not be found.
    #[error("cannot find a configuration folder; set MOE_SOVEREIGN_HOME")]
    NoHome,
    /// Binding or serving failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// What failed.
        source: std::io::Error,
    },
}

/// The x86-64-v3 features this build was compiled to use that the CPU does not have. Both
/// binaries check first thing, before any code that might use them runs.
pub fn missing_cpu_features() -> Option<String> {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
    {
        let missing: Vec<&str> = [
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("bmi2", std::arch::is_x86_feature_detected!("bmi2")),
            ("f16c", std::arch::is_x86_feature_detected!("f16c")),
        ]
        .into_iter()
        .filter(|(_, present)| !present)
        .map(|(name, _)| name)
        .collect();
        if !missing.is_empty() {
            return Some(missing.join(", "));
        }
    }
    None
}
