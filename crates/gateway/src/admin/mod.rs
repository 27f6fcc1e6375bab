//! The dashboard (`/ui`) and its JSON API (`/api`), for the one person who owns this machine's
//! account. Never opened by an API key: a session starts only from a one-time login link
//! (asked for with the secret in the home folder, by `moe-sovereign ui` or the tray), traded by
//! a POST for an `HttpOnly; SameSite=Strict` cookie.
//!
//! - [`session`]: login links and sessions;
//! - [`api`]: the handlers; what they do is the [`AdminBackend`]'s (the runtime's library
//!   functions, the same the CLI calls);
//! - [`assets`]: the UI files, embedded in the binary.

pub mod api;
pub mod assets;
pub mod session;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::routes::table::{Access, LOGIN_ASSETS, ROUTES};
use crate::{GatewayError, GatewayState};
pub use session::Sessions;

/// What the dashboard can ask the rest of the program to do.
#[derive(Debug, Clone)]
pub enum Action {
    /// Keys (never their values), with the default key marked.
    Keys,
    /// Issue a key; the only answer that carries a key value.
    CreateKey {
        /// A label.
        name: Option<String>,
        /// Its profile.
        profile: String,
    },
    /// Revoke a key.
    RevokeKey {
        /// The key id.
        id: String,
    },
    /// Bind a key (the default key when `None`) to a profile.
    SetProfile {
        /// The key id.
        id: Option<String>,
        /// The profile.
        profile: String,
    },
    /// Profiles, the expert behind each, and the key's active one (the `profiles list --json`
    /// rows).
    Profiles {
        /// The key id (default key when `None`).
        id: Option<String>,
    },
    /// The experts in `config.toml` (name, kind, URL, model; never a secret).
    Experts,
    /// Bind a profile to what answers it: `{"expert"}`, `{"model"}` (a registered model) or
    /// `{"kind", "base_url", "model"}` (a model server); written to `config.toml`, in force at once.
    BindProfile {
        /// The profile.
        profile: String,
        /// What should answer it.
        target: Value,
    },
    /// Registered models and which are resident.
    Models,
    /// Register a GGUF file already on this machine.
    AddModel {
        /// The file.
        path: String,
        /// Its name (default: the file name).
        name: Option<String>,
    },
    /// Ask the person at this machine for a GGUF file (the tray's file picker) and register it;
    /// `{"picked": false}` when they cancel. Not offered where nobody can see a dialog.
    PickModel,
    /// Start downloading a model (progress and the result come as live `model` events).
    PullModel {
        /// `owner/name` (default: the recommended small model).
        repo: Option<String>,
        /// The file in the repository.
        file: Option<String>,
    },
    /// Load a registered model into memory now (instead of on its first request).
    LoadModel {
        /// Its name.
        name: String,
    },
    /// Unload a model nobody is using.
    UnloadModel {
        /// Its name.
        name: String,
    },
    /// Forget a model (its file stays).
    RemoveModel {
        /// Its name.
        name: String,
    },
    /// Claude Desktop's and Claude Code's wiring state.
    Wiring,
    /// Point a Claude client (`claude-desktop`, `claude-code`) at this gateway.
    Wire {
        /// Which client.
        target: String,
    },
    /// Put a backup of one of Claude's files back (the current text is backed up first).
    RestoreBackup {
        /// The file.
        file: String,
        /// One of its backups.
        backup: String,
    },
    /// Undo [`Action::Wire`]: what was there before comes back.
    Unwire {
        /// Which client.
        target: String,
    },
    /// `doctor`'s checks.
    Doctor,
    /// Knowledge-graph facts (the `graph list --json` rows): of one key or all, best match
    /// first for a query, else newest first.
    Facts {
        /// One key only.
        key_id: Option<String>,
        /// Words to search for.
        query: Option<String>,
    },
    /// Forget one fact.
    ForgetFact {
        /// Its id.
        id: i64,
    },
    /// Forget every fact (of one key when given).
    ForgetFacts {
        /// One key only.
        key_id: Option<String>,
    },
    /// The newest log lines, newest first.
    Logs {
        /// The least severe level shown (`error` … `trace`; all when `None`).
        level: Option<String>,
    },
}

/// Why an action failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AdminError {
    /// The request was wrong (400).
    #[error("{0}")]
    BadRequest(String),
    /// No such object (404).
    #[error("{0}")]
    NotFound(String),
    /// It could not be done (500).
    #[error("{0}")]
    Failed(String),
}

impl From<AdminError> for GatewayError {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::BadRequest(m) => Self::InvalidRequest(m),
            AdminError::NotFound(m) => Self::NotFound(m),
            AdminError::Failed(m) => Self::Internal(m),
        }
    }
}

/// Carries out dashboard actions. Implemented by the runtime; calls may block (keychain, files),
/// so the gateway runs them on the blocking pool.
pub trait AdminBackend: Send + Sync {
    /// Does `action`; the answer is the API's JSON body.
    fn call(&self, action: Action) -> Result<Value, AdminError>;
}

/// The dashboard's state.
pub struct Admin {
    backend: Arc<dyn AdminBackend>,
    sessions: Sessions,
    login_secret: String,
    started: std::time::Instant,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

/// The header `moe-sovereign ui` sends the home folder's admin secret in.
pub const SECRET_HEADER: &str = "x-moe-admin-secret";

impl Admin {
    /// A dashboard whose login links are handed out to whoever shows `login_secret`.
    pub fn new(backend: Arc<dyn AdminBackend>, login_secret: String) -> Self {
        Self {
            backend,
            sessions: Sessions::default(),
            login_secret,
            started: std::time::Instant::now(),
        }
    }

    /// A one-time login URL for the gateway at `port` (the tray opens it in its window).
    pub fn login_url(&self, port: u16) -> String {
        format!(
            "http://127.0.0.1:{port}/ui/login#{}",
            self.sessions.issue_link()
        )
    }

    fn secret_matches(&self, presented: &str) -> bool {
        !self.login_secret.is_empty()
            && bool::from(presented.as_bytes().ct_eq(self.login_secret.as_bytes()))
    }
}

/// Whether a path belongs to the dashboard.
pub fn is_admin_path(path: &str) -> bool {
    path == "/ui" || path.starts_with("/ui/") || path == "/api" || path.starts_with("/api/")
}

/// Admin paths served without a session: the login page, the files it needs (no data in
/// any of them), the token exchange, and the two requests that need the home folder's secret
/// instead (a login link; stopping the gateway, when the tray app takes the port over).
/// (The route table's `Login` routes and [`LOGIN_ASSETS`].)
fn is_public(method: &Method, path: &str) -> bool {
    let method = if *method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    (method == "GET" && LOGIN_ASSETS.contains(&path))
        || ROUTES
            .iter()
            .any(|r| r.access == Access::Login && r.method == method && r.path == path)
}

/// The session cookie's name; the port is part of it because cookies ignore ports.
pub fn cookie_name(port: u16) -> String {
    format!("moe_admin_{port}")
}

fn session_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The dashboard's guard, after Host/Origin: API keys never open it; everything but the public
/// paths needs a session; a change needs our own `Origin` and a JSON body (no form posts from
/// elsewhere); every answer carries the security headers.
pub async fn guard(State(state): State<GatewayState>, request: Request, next: Next) -> Response {
    if !is_admin_path(request.uri().path()) {
        return next.run(request).await;
    }
    let mut response = match check(&state, &request) {
        Ok(()) => next.run(request).await,
        Err(error) => crate::routes::refuse(request, error).await,
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn check(state: &GatewayState, request: &Request) -> Result<(), GatewayError> {
    let Some(admin) = state.admin.as_ref() else {
        return Err(GatewayError::NotFound(
            "the dashboard is not served here".into(),
        ));
    };
    let headers = request.headers();
    if headers.contains_key("x-api-key") || headers.contains_key(header::AUTHORIZATION) {
        return Err(GatewayError::Forbidden(
            "API keys do not open the dashboard: run `moe-sovereign ui` for a login link".into(),
        ));
    }
    let method = request.method();
    if !matches!(*method, Method::GET | Method::HEAD) {
        if !headers.contains_key(header::ORIGIN) {
            return Err(GatewayError::Forbidden(
                "changes need the dashboard's own Origin".into(),
            ));
        }
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json {
            return Err(GatewayError::InvalidRequest(
                "changes need a JSON body (Content-Type: application/json)".into(),
            ));
        }
    }
    let path = request.uri().path();
    if is_public(method, path) {
        return Ok(());
    }
    let open = session_cookie(headers, &cookie_name(state.settings.port))
        .is_some_and(|session| admin.sessions.check(session));
    if open {
        Ok(())
    } else {
        Err(GatewayError::Unauthenticated(
            "no dashboard session: run `moe-sovereign ui` (or open the tray's dashboard) for a login link"
                .into(),
        ))
    }
}
