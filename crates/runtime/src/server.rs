//! Builds the experts and the route table from config, binds, serves, shuts down gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use moe_sovereign_gateway::admin::{Admin, AdminBackend};
use moe_sovereign_gateway::{GatewayState, Routes, Settings};
use moe_sovereign_telemetry::{Hub, LiveEvent};
use moe_sovereign_wiring::watch::{Event as WiringEvent, Watcher};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::admin::{Backend, FilePicker};
use crate::auth::FileKeys;
use crate::config::Config;
use crate::home_watch::{HomeChange, HomeWatcher};
use crate::routing::Routing;
use crate::{Home, RuntimeError};

/// How `serve` (or the tray app) was asked to run.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Overrides `listen` from config.
    pub listen: Option<SocketAddr>,
    /// Allows a non-loopback address.
    pub allow_remote: bool,
    /// A native file dialog for "add a model" (the tray app has one; `serve` does not).
    pub picker: Option<Arc<dyn FilePicker>>,
}

/// A bound, serving gateway.
pub struct RunningServer {
    addr: SocketAddr,
    home: Home,
    shutdown: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
    experts: usize,
    keys: usize,
    wiring_events: broadcast::Sender<WiringEvent>,
    hub: Arc<Hub>,
    admin: Arc<Admin>,
    backend: Arc<Backend>,
    home_changes: broadcast::Sender<HomeChange>,
    _watcher: Option<Watcher>,
    _home_watcher: Option<HomeWatcher>,
}

/// Binds and starts serving.
pub async fn start(
    home: &Home,
    config: &Config,
    options: &ServeOptions,
) -> Result<RunningServer, RuntimeError> {
    let listen = options.listen.unwrap_or(config.listen);
    let allow_remote = options.allow_remote || config.allow_remote;
    if !listen.ip().is_loopback() && !allow_remote {
        return Err(RuntimeError::Io {
            context: format!("refusing to listen on {listen}"),
            source: std::io::Error::other(
                "not a loopback address; pass --allow-remote to expose the gateway (auth stays on)",
            ),
        });
    }
    let store = home.secret_store(config.secret_store);
    let (routing, routes) = Routing::new(home, config)?;
    let expert_count = routing.expert_count();

    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| RuntimeError::Io {
            context: format!("cannot listen on {listen}"),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| RuntimeError::Io {
        context: "cannot read the bound address".into(),
        source,
    })?;
    let keys = Arc::new(FileKeys::new(
        home.keys(store.clone()).keys_path().to_owned(),
    ));
    let key_count = keys.count();
    let shutdown = CancellationToken::new();
    let hub = Hub::new();
    hub.spawn_sampler(shutdown.clone());
    let routes = Routes::new(routes);
    let routing = Arc::new(routing.serving(routes.clone()));
    crate::admin::model_events(&routing, hub.clone());
    let backend = Arc::new(Backend::new(
        home.clone(),
        routing.clone(),
        hub.clone(),
        options.picker.clone(),
    ));
    let admin = Arc::new(Admin::new(backend.clone(), home.admin_secret()?));
    let state = GatewayState {
        routes,
        auth: keys,
        settings: Arc::new(Settings {
            port: addr.port(),
            allow_any_host: allow_remote,
            max_body_bytes: config.gateway.max_body_bytes,
            ping_interval: config.gateway.ping_interval,
            first_event_timeout: config.gateway.first_event_timeout,
            signer: routing.signer().clone(),
        }),
        shutdown: shutdown.clone(),
        hub: hub.clone(),
        in_flight: Arc::default(),
        admin: Some(admin.clone()),
    };
    let task = tokio::spawn(moe_sovereign_gateway::serve(
        listener,
        state,
        shutdown.clone(),
    ));
    // Keep Claude's wiring in place while we serve (Claude Desktop rewrites its config on quit).
    let (wiring_events, _) = broadcast::channel(64);
    let watcher = match crate::wiring::watch(home, home.keys(store), wiring_events.clone()) {
        Ok(watcher) => Some(watcher),
        Err(error) => {
            tracing::warn!("not watching Claude's files: {error}");
            None
        }
    };
    tokio::spawn(forward_wiring_events(
        wiring_events.subscribe(),
        hub.clone(),
        shutdown.clone(),
    ));
    // Changes made elsewhere (the CLI registers a model, switches a profile): the routes follow
    // the model registry; the tray follows everything.
    let (home_changes, _) = broadcast::channel(64);
    let home_watcher = match crate::home_watch::watch(home.dir(), home_changes.clone()) {
        Ok(watcher) => Some(watcher),
        Err(error) => {
            tracing::warn!("not watching {}: {error}", home.dir().display());
            None
        }
    };
    tokio::spawn(follow_registry(
        home_changes.subscribe(),
        routing,
        shutdown.clone(),
    ));
    // `moe-sovereign ui` and `doctor` find this gateway here, whatever port it got.
    if let Err(error) = home.write_live(&crate::wiring::url_for(addr)) {
        tracing::warn!("{error}");
    }
    Ok(RunningServer {
        addr,
        home: home.clone(),
        shutdown,
        task,
        experts: expert_count,
        keys: key_count,
        wiring_events,
        hub,
        admin,
        backend,
        home_changes,
        _watcher: watcher,
        _home_watcher: home_watcher,
    })
}

/// A model registered or removed elsewhere (`moe-sovereign models add`) serves at once.
async fn follow_registry(
    mut changes: broadcast::Receiver<HomeChange>,
    routing: Arc<Routing>,
    shutdown: CancellationToken,
) {
    loop {
        let change = tokio::select! {
            () = shutdown.cancelled() => return,
            change = changes.recv() => change,
        };
        match change {
            Ok(HomeChange::Models) | Err(broadcast::error::RecvError::Lagged(_)) => {
                let routing = routing.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    crate::admin::refresh_routes(&routing);
                })
                .await;
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The watcher's events, for the dashboard's live feed.
async fn forward_wiring_events(
    mut events: broadcast::Receiver<WiringEvent>,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return,
            event = events.recv() => event,
        };
        let (message, attention) = match event {
            Ok(WiringEvent::Reapplied { target, file }) => (
                format!(
                    "{target}: our settings were missing from {} and were put back",
                    file.display()
                ),
                false,
            ),
            Ok(WiringEvent::Broken {
                target,
                file,
                line,
                column,
                message,
            }) => (
                format!(
                    "{target}: {} does not parse (line {line}, column {column}: {message}); it was left alone — fix it by hand",
                    file.display()
                ),
                true,
            ),
            Ok(WiringEvent::Failed { target, message }) => {
                (format!("{target}: re-applying failed: {message}"), true)
            }
            Ok(WiringEvent::Checked { .. }) | Err(broadcast::error::RecvError::Lagged(_)) => {
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        hub.publish(LiveEvent::Wiring { message, attention });
    }
}

impl RunningServer {
    /// The bound address (the real port when asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many experts are configured.
    pub fn expert_count(&self) -> usize {
        self.experts
    }

    /// What the wiring watcher does (re-applied, broken file, failure), for the tray and UI.
    pub fn wiring_events(&self) -> broadcast::Receiver<WiringEvent> {
        self.wiring_events.subscribe()
    }

    /// How many keys existed at start.
    pub fn key_count(&self) -> usize {
        self.keys
    }

    /// Telemetry, request traces and the live feed.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// A one-time dashboard login URL (the tray opens it in its window).
    pub fn login_url(&self) -> String {
        self.admin.login_url(self.addr.port())
    }

    /// What the dashboard's API calls (the tray's menu calls it too: one implementation).
    /// Its calls block on the keychain and files: make them off any UI thread.
    pub fn backend(&self) -> Arc<dyn AdminBackend> {
        self.backend.clone()
    }

    /// Changes to the home folder's files, whoever made them.
    pub fn home_changes(&self) -> broadcast::Receiver<HomeChange> {
        self.home_changes.subscribe()
    }

    /// Stops serving: open streams end with an `error` event, the wiring watcher stops,
    /// `live.json` goes and the port is free when this returns (at most `grace` later).
    pub async fn stop(self, grace: Duration) -> Result<(), RuntimeError> {
        self.shutdown.cancel();
        self.home.remove_live();
        let mut task = self.task;
        match tokio::time::timeout(grace, &mut task).await {
            Ok(result) => finished(result),
            Err(_) => {
                tracing::warn!("connections still open after {grace:?}; closing them");
                task.abort();
                let _ = task.await;
                Ok(())
            }
        }
    }

    /// Serves until the gateway is stopped from outside (`POST /api/shutdown`) or fails.
    pub async fn stopped(&mut self) -> Result<(), RuntimeError> {
        let result = (&mut self.task).await;
        self.home.remove_live();
        finished(result)
    }

    /// Serves until SIGINT/SIGTERM, then shuts down: open streams end with an `error` event,
    /// and the server stops within `grace`.
    pub async fn run_until_signal(mut self, grace: Duration) -> Result<(), RuntimeError> {
        tokio::select! {
            result = self.stopped() => return result,
            () = signal() => {}
        }
        tracing::info!("shutting down");
        self.stop(grace).await
    }
}

fn finished(
    result: Result<std::io::Result<()>, tokio::task::JoinError>,
) -> Result<(), RuntimeError> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(source)) => Err(RuntimeError::Io {
            context: "the server failed".into(),
            source,
        }),
        Err(error) => Err(RuntimeError::Io {
            context: "the server task failed".into(),
            source: std::io::Error::other(error.to_string()),
        }),
    }
}

async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => std::future::pending().await,
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
