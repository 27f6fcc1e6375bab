//! Local experts: GGUF models run in-process by mistral.rs. The only crate that depends on
//! mistral.rs.
//!
//! Layout:
//! - [`gguf`]: reads and validates GGUF headers before the engine sees a file (the
//!   `moe-sovereign-gguf` crate, re-exported: it has no engine dependency, so it is fuzzed alone);
//! - [`registry`]: `models.json`, the registered models;
//! - [`convert`]: tensors without a fast CPU kernel rewritten as Q8_0 when a model is added;
//! - [`resident`]: which models are in memory (lazy load, memory budget, idle unload);
//! - [`tools`]: tools for templates that cannot render them, forced calls as constraints;
//! - [`expert`]: [`LocalExpert`], the `Expert` over a loaded model.

pub mod convert;
pub mod expert;
pub mod registry;
pub mod resident;
pub mod tools;

pub use moe_sovereign_gguf as gguf;

pub use expert::LocalExpert;
pub use registry::{ModelEntry, Registry};
pub use resident::{Change as ResidencyChange, Residency, ResidencyPolicy};

/// What can go wrong with local models.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The file is not a usable model.
    #[error("{0}")]
    Invalid(String),
    /// No model by that name.
    #[error("no model called {0:?} is registered (see `moe-sovereign models list`)")]
    UnknownModel(String),
    /// The registry file could not be read or written.
    #[error("{0}")]
    Registry(String),
}
