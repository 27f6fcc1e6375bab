//! The model registry: `models.json` in the home folder, one entry per registered GGUF file.
//! Files stay where they are; the registry remembers what they are.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::gguf::{GgufInfo, inspect};
use crate::{LocalError, convert};

/// One registered model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// How config and commands refer to it.
    pub name: String,
    /// Absolute path of the GGUF file.
    pub path: PathBuf,
    /// `general.architecture`.
    pub architecture: String,
    /// e.g. `Q4_1`.
    pub quantization: String,
    /// File size in bytes.
    pub size: u64,
    /// Context length from the file.
    pub context_length: Option<u64>,
    /// The copy the engine runs, when the file's tensor types have no fast CPU kernel and were
    /// rewritten as Q8_0 (see [`crate::convert`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_path: Option<PathBuf>,
}

impl ModelEntry {
    /// The file the engine loads.
    pub fn engine_file(&self) -> &Path {
        self.engine_path.as_deref().unwrap_or(&self.path)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    #[serde(default)]
    models: Vec<ModelEntry>,
}

/// `home/models.json`.
#[derive(Debug, Clone)]
pub struct Registry {
    path: PathBuf,
    converted: PathBuf,
}

impl Registry {
    /// The registry of `home`.
    pub fn new(home: &Path) -> Self {
        Self {
            path: home.join("models.json"),
            converted: home.join("models").join("converted"),
        }
    }

    fn read(&self) -> Result<RegistryFile, LocalError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                LocalError::Registry(format!(
                    "{}:{}:{}: {e}",
                    self.path.display(),
                    e.line(),
                    e.column()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RegistryFile::default()),
            Err(e) => Err(LocalError::Registry(format!(
                "{}: {e}",
                self.path.display()
            ))),
        }
    }

    fn write(&self, file: &RegistryFile) -> Result<(), LocalError> {
        let io = |e: std::io::Error| LocalError::Registry(format!("{}: {e}", self.path.display()));
        let bytes = serde_json::to_vec_pretty(file).map_err(|e| io(e.into()))?;
        moe_sovereign_files::write_atomic(&self.path, &bytes, 0o600).map_err(io)
    }

    /// All registered models, in the order they were added.
    pub fn list(&self) -> Result<Vec<ModelEntry>, LocalError> {
        Ok(self.read()?.models)
    }

    /// The model called `name`.
    pub fn get(&self, name: &str) -> Result<ModelEntry, LocalError> {
        self.list()?
            .into_iter()
            .find(|m| m.name == name)
            .ok_or_else(|| LocalError::UnknownModel(name.to_owned()))
    }

    /// Validates `file` and registers it under `name` (default: the file name without `.gguf`).
    pub fn add(&self, file: &Path, name: Option<&str>) -> Result<ModelEntry, LocalError> {
        let path = std::fs::canonicalize(file)
            .map_err(|e| LocalError::Invalid(format!("{}: {e}", file.display())))?;
        let info: GgufInfo =
            inspect(&path).map_err(|e| LocalError::Invalid(format!("{}: {e}", file.display())))?;
        let name = match name {
            Some(name) => name.to_owned(),
            None => path
                .file_stem()
                .map(|s| s.to_string_lossy().to_lowercase())
                .unwrap_or_else(|| "model".into()),
        };
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(LocalError::Invalid(format!(
                "model name {name:?} must be non-empty without spaces"
            )));
        }
        let mut file = self.read()?;
        if file.models.iter().any(|m| m.name == name) {
            return Err(LocalError::Invalid(format!(
                "a model called {name:?} is already registered (remove it first or pass --name)"
            )));
        }
        self.sweep_converted(&file);
        let engine_path = if convert::worth_converting(&info) {
            let target = self.converted.join(format!("{name}.Q8_0.gguf"));
            convert::to_q8_0(&path, &info, &target)
                .map_err(|e| LocalError::Invalid(format!("converting to Q8_0: {e}")))?;
            Some(target)
        } else {
            None
        };
        let entry = ModelEntry {
            name,
            path,
            architecture: info.architecture,
            quantization: info.quantization,
            size: info.size,
            context_length: info.context_length,
            engine_path,
        };
        file.models.push(entry.clone());
        self.write(&file)?;
        Ok(entry)
    }

    /// What interrupted adds left among our converted copies: partial copies, and complete ones
    /// no entry of `file` names (a crash between the copy and the registry) — once a minute
    /// old, so another process's add in progress keeps its own.
    fn sweep_converted(&self, file: &RegistryFile) {
        moe_sovereign_files::sweep_folder(&self.converted, "");
        let Ok(entries) = std::fs::read_dir(&self.converted) else {
            return;
        };
        for path in entries.filter_map(Result::ok).map(|e| e.path()) {
            let ours = path.extension().is_some_and(|e| e == "gguf")
                && !file
                    .models
                    .iter()
                    .any(|m| m.engine_path.as_deref() == Some(path.as_path()));
            if ours && moe_sovereign_files::is_stale(&path) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    /// Forgets `name` (the file itself is left alone).
    pub fn remove(&self, name: &str) -> Result<ModelEntry, LocalError> {
        let mut file = self.read()?;
        let position = file
            .models
            .iter()
            .position(|m| m.name == name)
            .ok_or_else(|| LocalError::UnknownModel(name.to_owned()))?;
        let entry = file.models.remove(position);
        self.write(&file)?;
        if let Some(ours) = &entry.engine_path {
            // Our own converted copy; the user's file is never touched.
            let _ = std::fs::remove_file(ours);
        }
        Ok(entry)
    }
}
