//! `moe-sovereign-desktop`: the tray app. The gateway and the local models run in this process
//! (the same `crates/runtime` as `moe-sovereign serve`: same home, config, keys and models); the
//! tray menu switches profiles, wires Claude, adds models and opens the dashboard in a window.
//!
//! - [`menu`]: what the menu shows and what a click means (pure, unit-tested);
//! - [`tray`]: the menu on screen;
//! - [`app`]: the state, the gateway, the actions;
//! - [`window`]: the dashboard window;
//! - [`instance`]: one app per home folder.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod app;
mod instance;
mod menu;
mod tray;
mod window;

use std::process::ExitCode;

use moe_sovereign_runtime::{Home, config};
use tauri::{Manager, RunEvent};
use tauri_plugin_autostart::MacosLauncher;

const USAGE: &str = "moe-sovereign-desktop: the MoE Sovereign tray app (the gateway, local models and the dashboard).

Usage: moe-sovereign-desktop [--hidden | --version | --help]

It starts in the tray; its menu has everything. On a first run (no model, no key or Claude not
wired) it opens its window on the setup page, unless --hidden (start at login passes it).
A second launch shows the running one's window.
The data folder is $MOE_SOVEREIGN_HOME (default: the platform's config folder), shared with the
`moe-sovereign` CLI.";

/// GTK opens the GPU's OpenGL driver when it starts, only to pick a window visual: on a machine
/// rendering in software that maps Mesa and LLVM (44 MiB of the idle app's 128 MiB RSS,
/// measured). The tray needs no GL, and the dashboard window (WebKitGTK) draws without it; a
/// value the user set wins.
#[expect(
    unsafe_code,
    reason = "set_var before any other thread exists: first thing in main"
)]
fn set_gui_defaults() {
    if cfg!(target_os = "linux") && std::env::var_os("GDK_GL").is_none() {
        // SAFETY: called at the top of `main`, before any thread is spawned or GTK reads its
        // environment.
        unsafe { std::env::set_var("GDK_GL", "disable") };
    }
}

fn main() -> ExitCode {
    if let Some(missing) = moe_sovereign_runtime::missing_cpu_features() {
        eprintln!(
            "moe-sovereign-desktop: this build uses x86-64-v3 instructions and this CPU lacks {missing}; \
             build it with RUSTFLAGS=\"-C target-cpu=x86-64\""
        );
        return ExitCode::FAILURE;
    }
    let mut hidden = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--hidden" => hidden = true,
            "--version" | "-V" => {
                println!("moe-sovereign-desktop {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            // WebKitWebDriver starts its browser with `--automation` (the WebDriver tests).
            "--automation" => {}
            other => eprintln!("moe-sovereign-desktop: ignoring unknown argument {other:?}"),
        }
    }
    set_gui_defaults();
    let home = match Home::locate() {
        Ok(home) => home,
        Err(error) => {
            eprintln!("moe-sovereign-desktop: {error}");
            return ExitCode::FAILURE;
        }
    };
    moe_sovereign_runtime::logging::init(&home);
    let config = config::load(&home.config_path()).map_err(|e| e.to_string());
    let desktop = app::Desktop::new(home.clone(), config);
    let handover = desktop.clone();
    let built = tauri::Builder::default()
        // First, so that a second launch hands over before anything else starts.
        .plugin(tauri_plugin_single_instance::init(move |app, _, _| {
            tracing::info!("a second launch: showing the window");
            handover.focus(app);
        }))
        .plugin(tauri_plugin_autostart::init(
            MacosLauncher::LaunchAgent,
            Some(vec!["--hidden"]),
        ))
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_clipboard_manager::init())
        .plugin(tauri_plugin_dialog::init())
        .setup(move |app| {
            // Without a session bus the plugin above lets a second launch through.
            match instance::acquire(home.dir()) {
                Ok(lock) => {
                    app.manage(lock);
                }
                Err(instance::LockError::Held(pid)) => {
                    let pid = pid.map_or_else(String::new, |pid| format!(" (pid {pid})"));
                    eprintln!(
                        "moe-sovereign-desktop: already running for {}{pid}; use its tray menu",
                        home.dir().display()
                    );
                    std::process::exit(0);
                }
                Err(instance::LockError::Io(error)) => return Err(error.into()),
            }
            #[cfg(target_os = "macos")]
            app.set_activation_policy(tauri::ActivationPolicy::Accessory);
            desktop.show_tray(app.handle())?;
            tauri::async_runtime::spawn(
                desktop.clone().start_gateway(app.handle().clone(), !hidden),
            );
            Ok(())
        })
        .build(tauri::generate_context!());
    let app = match built {
        Ok(app) => app,
        Err(error) => {
            eprintln!("moe-sovereign-desktop: {error}");
            return ExitCode::FAILURE;
        }
    };
    app.run(|_, event| match event {
        // Closing the window leaves the app in the tray; only Quit exits.
        RunEvent::ExitRequested {
            code: None, api, ..
        } => {
            tracing::info!("the window closed; staying in the tray");
            api.prevent_exit();
        }
        RunEvent::Exit => tracing::info!("exiting"),
        _ => {}
    });
    ExitCode::SUCCESS
}
