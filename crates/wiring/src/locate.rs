//! Where Claude Desktop and Claude Code keep their files, per platform, computed only from
//! environment values (so tests point everything at a scratch folder).

use std::path::{Path, PathBuf};

use crate::WiringError;

/// The layout to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// `~/Library/Application Support/Claude{,-3p}`.
    MacOs,
    /// `%APPDATA%\Claude`, `%LOCALAPPDATA%\Claude-3p`, MSIX and `Claude Nest` variants.
    Windows,
    /// `~/.config/Claude{,-3p}`.
    Linux,
    /// Claude Desktop on the Windows side (through `/mnt/c/…`), Claude Code in the Linux home.
    Wsl,
}

impl Platform {
    /// `MOE_SOVEREIGN_PLATFORM` (`macos`, `windows`, `linux`, `wsl`) when set, else this machine.
    pub fn detect() -> Result<Self, WiringError> {
        if let Ok(name) = std::env::var("MOE_SOVEREIGN_PLATFORM")
            && !name.is_empty()
        {
            return Self::parse(&name).ok_or_else(|| {
                WiringError::Locate(format!(
                    "MOE_SOVEREIGN_PLATFORM={name:?}: expected macos, windows, linux or wsl"
                ))
            });
        }
        Ok(if cfg!(target_os = "macos") {
            Self::MacOs
        } else if cfg!(windows) {
            Self::Windows
        } else if std::env::var_os("WSL_DISTRO_NAME").is_some()
            || std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .is_ok_and(|r| r.to_ascii_lowercase().contains("microsoft"))
        {
            Self::Wsl
        } else {
            Self::Linux
        })
    }

    /// From its name.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "macos" | "darwin" => Some(Self::MacOs),
            "windows" => Some(Self::Windows),
            "linux" => Some(Self::Linux),
            "wsl" => Some(Self::Wsl),
            _ => None,
        }
    }

    /// Whether Claude Desktop runs on Windows (natively or across WSL).
    pub fn desktop_on_windows(self) -> bool {
        matches!(self, Self::Windows | Self::Wsl)
    }
}

/// The environment values the layout depends on.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `HOME` (or `USERPROFILE` on Windows).
    pub home: Option<PathBuf>,
    /// `XDG_CONFIG_HOME`.
    pub xdg_config_home: Option<PathBuf>,
    /// `APPDATA`.
    pub appdata: Option<PathBuf>,
    /// `LOCALAPPDATA`.
    pub localappdata: Option<PathBuf>,
    /// `USERPROFILE`.
    pub userprofile: Option<PathBuf>,
    /// `CLAUDE_CONFIG_DIR` (Claude Code's own override of `~/.claude`).
    pub claude_config_dir: Option<PathBuf>,
}

impl Env {
    /// This process's environment.
    pub fn from_process() -> Self {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Self {
            home: var("HOME").or_else(|| var("USERPROFILE")),
            xdg_config_home: var("XDG_CONFIG_HOME"),
            appdata: var("APPDATA"),
            localappdata: var("LOCALAPPDATA"),
            userprofile: var("USERPROFILE"),
            claude_config_dir: var("CLAUDE_CONFIG_DIR"),
        }
    }

    fn home(&self) -> Result<&Path, WiringError> {
        self.home
            .as_deref()
            .ok_or_else(|| WiringError::Locate("HOME is not set".into()))
    }
}

/// Claude Desktop's folders: where `claude_desktop_config.json` lives (`normal`, the first one
/// holds the seed's `thirdPartyInference` block) and the third-party profile folders (`Claude-3p`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesktopFolders {
    /// `Claude` folders.
    pub normal: Vec<PathBuf>,
    /// `Claude-3p` folders.
    pub third_party: Vec<PathBuf>,
}

/// Claude Desktop's folders for `platform`.
pub fn desktop_folders(platform: Platform, env: &Env) -> Result<DesktopFolders, WiringError> {
    match platform {
        Platform::MacOs => {
            let base = env.home()?.join("Library").join("Application Support");
            Ok(DesktopFolders {
                normal: vec![base.join("Claude")],
                third_party: vec![base.join("Claude-3p")],
            })
        }
        Platform::Linux => {
            let base = match &env.xdg_config_home {
                Some(dir) => dir.clone(),
                None => env.home()?.join(".config"),
            };
            Ok(DesktopFolders {
                normal: vec![base.join("Claude")],
                third_party: vec![base.join("Claude-3p")],
            })
        }
        Platform::Windows => {
            let profile = env.userprofile.clone().or_else(|| env.home.clone());
            let appdata = env
                .appdata
                .clone()
                .or_else(|| profile.as_ref().map(|p| p.join("AppData").join("Roaming")));
            let local = env
                .localappdata
                .clone()
                .or_else(|| profile.as_ref().map(|p| p.join("AppData").join("Local")));
            match (appdata, local) {
                (Some(appdata), Some(local)) => Ok(windows_folders(&appdata, &local)),
                _ => Err(WiringError::Locate(
                    "neither APPDATA/LOCALAPPDATA nor USERPROFILE is set".into(),
                )),
            }
        }
        Platform::Wsl => {
            let profile = wsl_windows_profile(env)?;
            // APPDATA/LOCALAPPDATA passed through WSLENV with `/p` arrive as Linux paths.
            let linux_path = |p: &Option<PathBuf>| p.clone().filter(|p| p.starts_with("/"));
            let appdata =
                linux_path(&env.appdata).unwrap_or_else(|| profile.join("AppData").join("Roaming"));
            let local = linux_path(&env.localappdata)
                .unwrap_or_else(|| profile.join("AppData").join("Local"));
            Ok(windows_folders(&appdata, &local))
        }
    }
}

/// The Windows layout: the classic folders always; `Claude Nest` and MSIX ones when present.
fn windows_folders(appdata: &Path, local: &Path) -> DesktopFolders {
    let mut normal = vec![appdata.join("Claude")];
    let mut third_party = vec![local.join("Claude-3p")];
    for variant in ["Claude", "Claude Nest"] {
        if local.join(variant).is_dir() {
            normal.push(local.join(variant));
        }
    }
    if local.join("Claude Nest-3p").is_dir() {
        third_party.push(local.join("Claude Nest-3p"));
    }
    // MSIX installs see a virtualised AppData under Packages\Claude_<publisher id>.
    if let Ok(entries) = std::fs::read_dir(local.join("Packages")) {
        let mut packages: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("Claude_"))
            })
            .collect();
        packages.sort();
        for package in packages {
            let roaming = package.join("LocalCache").join("Roaming");
            normal.push(roaming.join("Claude"));
            third_party.push(roaming.join("Claude-3p"));
        }
    }
    DesktopFolders {
        normal,
        third_party,
    }
}

/// The Windows user's profile folder as seen from WSL: `USERPROFILE` when it is already a Linux
/// path (WSLENV `USERPROFILE/p`), else asked from Windows (`cmd.exe` + `wslpath`).
fn wsl_windows_profile(env: &Env) -> Result<PathBuf, WiringError> {
    if let Some(profile) = env.userprofile.clone().filter(|p| p.starts_with("/")) {
        return Ok(profile);
    }
    let run = |program: &str, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    run("cmd.exe", &["/c", "echo %USERPROFILE%"])
        .and_then(|windows| run("wslpath", &["-u", &windows]))
        .map(PathBuf::from)
        .ok_or_else(|| {
            WiringError::Locate(
                "cannot find the Windows user folder from WSL: set USERPROFILE to its /mnt/c/… path"
                    .into(),
            )
        })
}

/// Claude Code's user settings: `$CLAUDE_CONFIG_DIR/settings.json`, else `~/.claude/settings.json`.
pub fn claude_code_settings(env: &Env) -> Result<PathBuf, WiringError> {
    Ok(match &env.claude_config_dir {
        Some(dir) => dir.join("settings.json"),
        None => env.home()?.join(".claude").join("settings.json"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(root: &Path) -> Env {
        Env {
            home: Some(root.join("home")),
            ..Env::default()
        }
    }

    #[test]
    fn macos_and_linux() {
        let root = Path::new("/scratch");
        let mac = desktop_folders(Platform::MacOs, &env(root)).unwrap();
        assert_eq!(
            mac.third_party,
            [root.join("home/Library/Application Support/Claude-3p")]
        );
        let linux = desktop_folders(Platform::Linux, &env(root)).unwrap();
        assert_eq!(linux.normal, [root.join("home/.config/Claude")]);
        let xdg = Env {
            xdg_config_home: Some(root.join("xdg")),
            ..env(root)
        };
        assert_eq!(
            desktop_folders(Platform::Linux, &xdg).unwrap().third_party,
            [root.join("xdg/Claude-3p")]
        );
        assert_eq!(
            claude_code_settings(&env(root)).unwrap(),
            root.join("home/.claude/settings.json")
        );
    }

    #[test]
    fn windows_with_msix_and_nest_variants() {
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("Local");
        std::fs::create_dir_all(local.join("Claude Nest-3p")).unwrap();
        std::fs::create_dir_all(local.join("Packages/Claude_pzs8sxrjxfjjc")).unwrap();
        std::fs::create_dir_all(local.join("Packages/Other_1")).unwrap();
        let env = Env {
            appdata: Some(dir.path().join("Roaming")),
            localappdata: Some(local.clone()),
            ..Env::default()
        };
        let folders = desktop_folders(Platform::Windows, &env).unwrap();
        let msix = local.join("Packages/Claude_pzs8sxrjxfjjc/LocalCache/Roaming");
        assert_eq!(
            folders.normal,
            [dir.path().join("Roaming/Claude"), msix.join("Claude")]
        );
        assert_eq!(
            folders.third_party,
            [
                local.join("Claude-3p"),
                local.join("Claude Nest-3p"),
                msix.join("Claude-3p")
            ]
        );
    }

    #[test]
    fn wsl_uses_the_windows_profile() {
        let env = Env {
            home: Some("/home/me".into()),
            userprofile: Some("/mnt/c/Users/Me".into()),
            ..Env::default()
        };
        let folders = desktop_folders(Platform::Wsl, &env).unwrap();
        assert_eq!(
            folders.normal,
            [PathBuf::from("/mnt/c/Users/Me/AppData/Roaming/Claude")]
        );
        assert_eq!(
            claude_code_settings(&env).unwrap(),
            PathBuf::from("/home/me/.claude/settings.json")
        );
    }
}
