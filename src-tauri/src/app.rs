//! The app's state and what its menu does: the gateway (started, taken over, stopped), the tray
//! state kept true from the gateway's events and the home folder's changes, and each action —
//! through the same library calls as the CLI and the dashboard ([`RunningServer::backend`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use moe_sovereign_gateway::admin::{Action as AdminAction, SECRET_HEADER};
use moe_sovereign_runtime::admin::FilePicker;
use moe_sovereign_runtime::home_watch::HomeChange;
use moe_sovereign_runtime::{Config, Home, RunningServer, RuntimeError, ServeOptions};
use moe_sovereign_telemetry::LiveEvent;
use serde_json::Value;
use tauri::{AppHandle, Manager};
use tauri_plugin_autostart::ManagerExt as _;
use tauri_plugin_clipboard_manager::ClipboardExt as _;
use tauri_plugin_dialog::DialogExt as _;
use tauri_plugin_notification::NotificationExt as _;
use tokio::sync::broadcast;

use crate::menu::{self, Action, Gateway, Model, PortHolder, TrayState};
use crate::tray::Tray;
use crate::window;

/// How long open streams get to end when quitting.
const QUIT_GRACE: Duration = Duration::from_secs(2);
/// How long a copied key stays on the clipboard.
const CLIPBOARD_TTL: Duration = Duration::from_secs(60);

/// The app: one per process, shared by the menu, the event followers and the window.
pub struct Desktop {
    home: Home,
    config: Result<Config, String>,
    server: Mutex<Option<RunningServer>>,
    state: Mutex<TrayState>,
    tray: Mutex<Option<Tray>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The native file dialog, for the dashboard's "Choose a file…" and the menu's "Add model…".
#[derive(Debug)]
struct DialogPicker(AppHandle);

impl FilePicker for DialogPicker {
    fn pick_gguf(&self) -> Option<std::path::PathBuf> {
        let mut dialog = self.0.dialog().file().set_title("Add a GGUF model");
        // Start where people keep files (Downloads, else home), not in the app's own folder.
        if let Ok(folder) = self
            .0
            .path()
            .download_dir()
            .or_else(|_| self.0.path().home_dir())
        {
            dialog = dialog.set_directory(folder);
        }
        dialog
            .add_filter("GGUF model", &["gguf"])
            .blocking_pick_file()
            .and_then(|file| file.into_path().ok())
    }
}

impl Desktop {
    /// The app over `home`, with its config (or why it is unusable).
    pub fn new(home: Home, config: Result<Config, String>) -> Arc<Self> {
        Arc::new(Self {
            home,
            config,
            server: Mutex::new(None),
            state: Mutex::new(TrayState::default()),
            tray: Mutex::new(None),
        })
    }

    /// Puts the tray on screen.
    pub fn show_tray(self: &Arc<Self>, app: &AppHandle) -> tauri::Result<()> {
        let this = Arc::clone(self);
        let state = lock(&self.state).clone();
        let tray = Tray::new(app, &state, move |app, id| this.clicked(app, id))?;
        *lock(&self.tray) = Some(tray);
        Ok(())
    }

    fn update(&self, app: &AppHandle, change: impl FnOnce(&mut TrayState)) {
        let state = {
            let mut state = lock(&self.state);
            change(&mut state);
            state.clone()
        };
        if let Some(tray) = lock(&self.tray).as_mut()
            && let Err(error) = tray.show(app, &state)
        {
            tracing::warn!("cannot update the tray menu: {error}");
        }
    }

    fn notify(app: &AppHandle, body: &str) {
        tracing::info!("notification: {body}");
        if let Err(error) = app
            .notification()
            .builder()
            .title("MoE Sovereign")
            .body(body)
            .show()
        {
            tracing::warn!("cannot show a notification: {error}");
        }
    }

    fn admin(&self, action: AdminAction) -> Result<Value, String> {
        // Not under the server lock: an action may take a while (the keychain, a conversion).
        let backend = lock(&self.server)
            .as_ref()
            .map(RunningServer::backend)
            .ok_or_else(|| "the gateway is not running".to_owned())?;
        backend.call(action).map_err(|e| e.to_string())
    }

    /// Starts the gateway (in the app's async runtime); on success follows its events and, on a
    /// first run, opens the onboarding page.
    pub async fn start_gateway(self: Arc<Self>, app: AppHandle, first_launch: bool) {
        self.update(&app, |s| s.gateway = Gateway::Starting);
        let config = match &self.config {
            Ok(config) => config.clone(),
            Err(reason) => {
                self.update(&app, |s| s.gateway = Gateway::Failed(reason.clone()));
                return;
            }
        };
        let options = ServeOptions {
            picker: Some(Arc::new(DialogPicker(app.clone()))),
            ..ServeOptions::default()
        };
        let server = match moe_sovereign_runtime::start(&self.home, &config, &options).await {
            Ok(server) => server,
            Err(RuntimeError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::AddrInUse =>
            {
                let holder = self.port_holder(config.listen);
                tracing::warn!("port {} is taken ({holder:?})", config.listen.port());
                self.update(&app, |s| {
                    s.gateway = Gateway::PortTaken(config.listen, holder);
                });
                return;
            }
            Err(error) => {
                tracing::error!("the gateway did not start: {error}");
                self.update(&app, |s| s.gateway = Gateway::Failed(error.to_string()));
                return;
            }
        };
        let addr = server.addr();
        tracing::info!("serving on http://{addr}");
        let live = server.hub().subscribe();
        let changes = server.home_changes();
        *lock(&self.server) = Some(server);
        self.update(&app, |s| s.gateway = Gateway::Serving(addr));
        let this = Arc::clone(&self);
        let app2 = app.clone();
        let first_run = tauri::async_runtime::spawn_blocking(move || {
            this.refresh(
                &app2,
                &[HomeChange::Keys, HomeChange::Wiring, HomeChange::Models],
            );
            let state = lock(&this.state).clone();
            state.model == Model::None || state.profile.is_none() || !state.wired.contains(&true)
        })
        .await
        .unwrap_or(false);
        if first_launch && first_run {
            self.open_window(&app, "welcome");
        }
        tauri::async_runtime::spawn(Arc::clone(&self).follow(app, live, changes));
    }

    /// Who holds the configured port: our own `serve` (its `live.json`) or something else.
    fn port_holder(&self, listen: SocketAddr) -> PortHolder {
        match self.home.live() {
            Some((url, pid)) if url.ends_with(&format!(":{}", listen.port())) => {
                PortHolder::Serve(pid)
            }
            _ => PortHolder::Other,
        }
    }

    /// Keeps the tray true: the gateway's live events and the home folder's changes.
    async fn follow(
        self: Arc<Self>,
        app: AppHandle,
        mut live: broadcast::Receiver<LiveEvent>,
        mut changes: broadcast::Receiver<HomeChange>,
    ) {
        loop {
            tokio::select! {
                event = live.recv() => match event {
                    Ok(event) => self.on_live(&app, event),
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                change = changes.recv() => {
                    let change = match change {
                        Ok(change) => vec![change],
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            vec![HomeChange::Keys, HomeChange::Wiring, HomeChange::Models]
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    };
                    let this = Arc::clone(&self);
                    let app = app.clone();
                    let _ = tauri::async_runtime::spawn_blocking(move || this.refresh(&app, &change)).await;
                }
            }
        }
    }

    fn on_live(&self, app: &AppHandle, event: LiveEvent) {
        match event {
            LiveEvent::Requests { open } => self.update(app, |s| s.open = open),
            LiveEvent::Model {
                name,
                state,
                detail,
                ..
            } => match state.as_str() {
                "loading" => self.update(app, |s| s.model = Model::Loading(name)),
                "loaded" => {
                    Self::notify(app, &format!("Model {name} is loaded."));
                    self.update(app, |s| s.model = Model::Loaded(name));
                }
                "unloaded" => self.update(app, |s| s.model = Model::OnDisk(name)),
                "failed" => {
                    let why = detail.unwrap_or_default();
                    Self::notify(app, &format!("Model {name} failed: {why}"));
                    self.update(app, |s| s.model = Model::Failed(name));
                }
                _ => {}
            },
            LiveEvent::Wiring { message, attention } => {
                Self::notify(app, &message);
                if attention {
                    self.update(app, |s| s.attention = Some(message));
                } else {
                    self.update(app, |s| s.attention = None);
                }
            }
            LiveEvent::Telemetry(_) | LiveEvent::Trace(_) => {}
        }
    }

    /// Reads what changed from disk (keys, wiring, models) and shows it. Blocking.
    fn refresh(&self, app: &AppHandle, changes: &[HomeChange]) {
        let mut keys = None;
        if changes.contains(&HomeChange::Keys) || changes.contains(&HomeChange::Wiring) {
            match self.admin(AdminAction::Keys) {
                Ok(answer) => keys = answer["data"].as_array().cloned(),
                Err(error) => tracing::warn!("cannot read the keys: {error}"),
            }
        }
        if let Some(rows) = &keys {
            let profile = rows
                .iter()
                .find(|k| k["default"] == true)
                .and_then(|k| k["profile"].as_str())
                .map(str::to_owned);
            self.update(app, |s| s.profile = profile);
        }
        if changes.contains(&HomeChange::Keys) || changes.contains(&HomeChange::Wiring) {
            match self.admin(AdminAction::Wiring) {
                Ok(answer) => self.show_wiring(app, &answer, keys.as_deref()),
                Err(error) => tracing::warn!("cannot read the wiring: {error}"),
            }
        }
        if changes.contains(&HomeChange::Models) || changes.contains(&HomeChange::Config) {
            match self.admin(AdminAction::Models) {
                Ok(answer) => {
                    let rows = answer["data"].as_array().cloned().unwrap_or_default();
                    let name = |m: &Value| m["name"].as_str().unwrap_or("?").to_owned();
                    let model = match rows.iter().find(|m| m["resident"] == true) {
                        Some(m) => Model::Loaded(name(m)),
                        None => rows.first().map_or(Model::None, |m| Model::OnDisk(name(m))),
                    };
                    self.update(app, |s| {
                        // A load in progress or a failure stays until an event says otherwise.
                        let transient = matches!(&s.model, Model::Loading(n) | Model::Failed(n)
                            if rows.iter().any(|m| m["name"] == n.as_str()));
                        if !transient || matches!(model, Model::Loaded(_)) {
                            s.model = model;
                        }
                    });
                }
                Err(error) => tracing::warn!("cannot list the models: {error}"),
            }
        }
        let autostart = app.autolaunch().is_enabled().unwrap_or(false);
        self.update(app, |s| s.autostart = autostart);
    }

    /// Which clients are wired; a wired client whose key was revoked is a dead end: say so.
    fn show_wiring(&self, app: &AppHandle, answer: &Value, keys: Option<&[Value]>) {
        let targets = answer["targets"].as_array().cloned().unwrap_or_default();
        let mut wired = [false; 2];
        let mut revoked = Vec::new();
        for (index, (name, title)) in menu::TARGETS.iter().enumerate() {
            let Some(target) = targets.iter().find(|t| t["target"] == *name) else {
                continue;
            };
            wired[index] = target["wired"] == true;
            if let (true, Some(key_id), Some(keys)) =
                (wired[index], target["key_id"].as_str(), keys)
                && !keys.iter().any(|k| k["id"] == key_id)
            {
                revoked.push(format!(
                    "{title} uses key {key_id}, which was revoked: its requests are refused. Wire it again to give it the default key."
                ));
            }
        }
        let previous = lock(&self.state).attention.clone();
        let attention = revoked.first().cloned();
        if attention.is_some() && attention != previous {
            for message in &revoked {
                Self::notify(app, message);
            }
        }
        self.update(app, |s| {
            s.wired = wired;
            if attention.is_some() {
                s.attention = attention;
            } else if s
                .attention
                .as_deref()
                .is_some_and(|a| a.contains("was revoked"))
            {
                s.attention = None;
            }
        });
    }

    /// A menu click (on the main thread): routed, then done off it. Nothing here may wait for
    /// the tray lock: its holder may be waiting for this thread to update the menu.
    fn clicked(self: &Arc<Self>, app: &AppHandle, id: &str) {
        let state = lock(&self.state).clone();
        let action = menu::route(id, &state);
        tracing::info!("menu: {id} -> {action:?}");
        match action {
            Some(Action::OpenDashboard) => self.open_window(app, "dashboard"),
            Some(Action::OpenLogs) => self.open_window(app, "logs"),
            _ => {}
        }
        let this = Arc::clone(self);
        let app = app.clone();
        std::thread::spawn(move || match action {
            // A click on a row that does nothing may have toggled a check item: show the truth.
            None => this.update(&app, |_| {}),
            Some(Action::OpenDashboard) => this.update(&app, |s| {
                if !s
                    .attention
                    .as_deref()
                    .is_some_and(|a| a.contains("revoked"))
                {
                    s.attention = None;
                }
            }),
            Some(action) => this.act(&app, action),
        });
    }

    /// Shows the dashboard window at `page`.
    pub fn open_window(&self, app: &AppHandle, page: &str) {
        let url = lock(&self.server).as_ref().map(RunningServer::login_url);
        let Some(url) = url else {
            Self::notify(
                app,
                "The gateway is not running, so there is no dashboard to show.",
            );
            return;
        };
        if let Err(error) = window::show(app, &url, page) {
            tracing::error!("cannot open the dashboard window: {error}");
        }
    }

    /// Carries out a menu action (on a thread of its own: keychain, files, dialogs).
    fn act(self: Arc<Self>, app: &AppHandle, action: Action) {
        match action {
            Action::SetProfile(profile) => {
                let result = self.admin(AdminAction::SetProfile { id: None, profile });
                if let Err(error) = result {
                    Self::notify(app, &format!("Could not switch the profile: {error}"));
                }
                self.refresh(app, &[HomeChange::Keys]);
            }
            Action::Wire(target) => self.wire(app, &target, true),
            Action::Unwire(target) => self.wire(app, &target, false),
            Action::CopyKey => self.copy_key(app),
            Action::AddModel => {
                let picked = DialogPicker(app.clone()).pick_gguf();
                if let Some(path) = picked {
                    Self::notify(app, &format!("Adding {}…", path.display()));
                    let result = self.admin(AdminAction::AddModel {
                        path: path.to_string_lossy().into_owned(),
                        name: None,
                    });
                    Self::notify(
                        app,
                        &match result {
                            Ok(answer) => format!(
                                "Model {} is registered and answers from now on.",
                                answer["name"].as_str().unwrap_or("?")
                            ),
                            Err(error) => format!("The model was not added: {error}"),
                        },
                    );
                    self.refresh(app, &[HomeChange::Models]);
                }
            }
            Action::SetAutostart(on) => {
                let launcher = app.autolaunch();
                let result = if on {
                    launcher.enable()
                } else {
                    launcher.disable()
                };
                if let Err(error) = result {
                    Self::notify(
                        app,
                        &format!("Start at login could not be changed: {error}"),
                    );
                }
                let autostart = launcher.is_enabled().unwrap_or(false);
                self.update(app, |s| s.autostart = autostart);
            }
            Action::TakeOver => self.take_over(app),
            Action::Quit { restore } => self.quit(app, restore),
            Action::OpenDashboard | Action::OpenLogs => {}
        }
    }

    /// Wires (or unwires) a Claude client, and says how it went.
    fn wire(&self, app: &AppHandle, target: &str, wire: bool) {
        let title = menu::TARGETS
            .iter()
            .find(|(name, _)| *name == target)
            .map_or(target, |(_, title)| title);
        let target = target.to_owned();
        let result = self.admin(if wire {
            AdminAction::Wire { target }
        } else {
            AdminAction::Unwire { target }
        });
        Self::notify(
            app,
            &match (result, wire) {
                (Ok(_), true) => {
                    format!("{title} now uses this gateway (restart it if it is open).")
                }
                (Ok(_), false) => format!("{title}'s own settings are back."),
                (Err(error), _) => format!("{title}: {error}"),
            },
        );
        self.refresh(app, &[HomeChange::Keys, HomeChange::Wiring]);
    }

    /// The default key on the clipboard, cleared after a minute if it is still there.
    fn copy_key(&self, app: &AppHandle) {
        let key = match &self.config {
            Ok(config) => self
                .home
                .keys(self.home.secret_store(config.secret_store))
                .reveal(None)
                .map_err(|e| e.to_string()),
            Err(reason) => Err(reason.clone()),
        };
        let key = match key {
            Ok(key) => key,
            Err(error) => return Self::notify(app, &format!("No key to copy: {error}")),
        };
        if let Err(error) = app.clipboard().write_text(key.clone()) {
            return Self::notify(app, &format!("Could not copy the key: {error}"));
        }
        Self::notify(
            app,
            "The API key is on the clipboard; it is cleared in 60 seconds.",
        );
        let app = app.clone();
        std::thread::spawn(move || {
            std::thread::sleep(CLIPBOARD_TTL);
            if app.clipboard().read_text().is_ok_and(|now| now == key) {
                let _ = app.clipboard().clear();
            }
        });
    }

    /// Asks the `serve` on our port to stop (the home folder's secret shows we may), waits for
    /// the port, then serves here.
    fn take_over(self: Arc<Self>, app: &AppHandle) {
        let (Some((url, _)), Some(secret)) = (self.home.live(), self.home.read_admin_secret())
        else {
            return Self::notify(app, "The gateway on the port is not ours to stop.");
        };
        let asked = tauri::async_runtime::block_on(async {
            reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()?
                .post(format!("{url}/api/shutdown"))
                .header(SECRET_HEADER, secret)
                .header("origin", url.as_str())
                .json(&serde_json::json!({}))
                .send()
                .await?
                .error_for_status()
        });
        if let Err(error) = asked {
            return Self::notify(app, &format!("`serve` did not stop: {error}"));
        }
        // `serve` frees the port within its grace period; the first bind that works wins.
        let listen = self.config.as_ref().map(|c| c.listen).ok();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while let Some(listen) = listen
            && std::net::TcpListener::bind(listen).is_err()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        tauri::async_runtime::block_on(Arc::clone(&self).start_gateway(app.clone(), false));
        if matches!(lock(&self.state).gateway, Gateway::Serving(_)) {
            Self::notify(app, "The tray app serves now; `serve` has stopped.");
        }
    }

    /// Quits: Claude's settings restored first when asked, then open streams end with an
    /// `error` event, the wiring watcher stops and the port is freed; then the process exits.
    fn quit(self: Arc<Self>, app: &AppHandle, restore: bool) {
        let started = std::time::Instant::now();
        self.update(app, |s| s.gateway = Gateway::Stopping);
        if restore {
            let wired = lock(&self.state).wired;
            for ((target, title), wired) in menu::TARGETS.into_iter().zip(wired) {
                if wired
                    && let Err(error) = self.admin(AdminAction::Unwire {
                        target: target.to_owned(),
                    })
                {
                    tracing::error!("could not restore {title}'s settings: {error}");
                }
            }
        }
        let server = lock(&self.server).take();
        if let Some(server) = server
            && let Err(error) = tauri::async_runtime::block_on(server.stop(QUIT_GRACE))
        {
            tracing::warn!("stopping the gateway: {error}");
        }
        tracing::info!("quit after {} ms", started.elapsed().as_millis());
        app.exit(0);
    }

    /// Brings the window forward (a second launch hands over to this one).
    pub fn focus(&self, app: &AppHandle) {
        if let Some(window) = app.get_webview_window(window::LABEL) {
            let _ = window.unminimize();
            let _ = window.show();
            let _ = window.set_focus();
        } else {
            self.open_window(app, "dashboard");
        }
    }
}
