//! The HTTP edge: a loopback Anthropic-compatible gateway.
//!
//! One request: guards (request-id, Host, Origin, body size) → auth (key → profile) → parse →
//! normalise (billing block out) → route (profile + model → expert) → expert stream → SSE or JSON.
//! Only this crate turns expert events into Anthropic responses; errors become the Anthropic
//! envelope here and nowhere else.
//!
//! Layout:
//! - [`state`]: [`GatewayState`] and its settings; the [`Authenticator`] seam;
//! - [`guard`]: request-id, Host/Origin checks, auth middleware;
//! - [`error`]: [`GatewayError`] → status + envelope;
//! - [`routes`]: thin handlers (`messages`, `count_tokens`, `models`, `health`);
//! - [`normalize`]: what the gateway changes before an expert sees a request;
//! - [`sse`]: the one state machine from expert events to stream events, and the SSE body;
//! - [`collect`]: stream events folded into a non-streaming message;
//! - [`trace`]: each request's trace for the dashboard (tokens, timings, outcome);
//! - [`admin`]: the dashboard (`/ui`) and its API (`/api`), behind their own sessions.

pub mod admin;
pub mod collect;
pub mod error;
pub mod guard;
pub mod normalize;
pub mod routes;
pub mod sse;
pub mod state;
pub mod trace;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, post, put};
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::Layer;

pub use error::GatewayError;
pub use state::{Authenticator, Caller, GatewayState, Routes, Settings};

/// The whole HTTP surface. The guards wrap the complete router as one service, so they run for
/// unknown routes and methods too (`Router::layer` would skip the fallbacks).
pub fn router(state: GatewayState) -> Router {
    let routes = Router::new()
        .route("/", get(routes::health::root).head(routes::health::root))
        .route("/health", get(routes::health::health))
        .route("/v1/messages", post(routes::messages::create))
        .route(
            "/v1/messages/count_tokens",
            post(routes::count_tokens::count),
        )
        .route("/v1/models", get(routes::models::list))
        .route("/v1/models/{id}", get(routes::models::retrieve))
        .route("/ui", get(admin::assets::root))
        .route("/ui/", get(admin::assets::index))
        .route("/ui/login", get(admin::assets::login))
        .route("/ui/assets/{file}", get(admin::assets::asset))
        .route("/api/login-link", post(admin::api::login_link))
        .route("/api/session", post(admin::api::session))
        .route("/api/logout", post(admin::api::logout))
        .route("/api/shutdown", post(admin::api::shutdown))
        .route("/api/overview", get(admin::api::overview))
        .route("/api/events", get(admin::api::events))
        .route("/api/requests", get(admin::api::requests))
        .route(
            "/api/keys",
            get(admin::api::keys).post(admin::api::create_key),
        )
        .route("/api/keys/{id}", delete(admin::api::revoke_key))
        .route("/api/keys/{id}/profile", put(admin::api::set_profile))
        .route("/api/profiles", get(admin::api::profiles))
        .route("/api/profiles/{profile}", put(admin::api::bind_profile))
        .route("/api/experts", get(admin::api::experts))
        .route(
            "/api/models",
            get(admin::api::models).post(admin::api::add_model),
        )
        .route("/api/models/pull", post(admin::api::pull_model))
        .route("/api/models/pick", post(admin::api::pick_model))
        .route("/api/models/{name}", delete(admin::api::remove_model))
        .route("/api/models/{name}/load", post(admin::api::load_model))
        .route("/api/models/{name}/unload", post(admin::api::unload_model))
        .route("/api/wiring", get(admin::api::wiring))
        .route("/api/wiring/restore", post(admin::api::restore_backup))
        .route("/api/wiring/{target}/wire", post(admin::api::wire))
        .route("/api/wiring/{target}/unwire", post(admin::api::unwire))
        .route("/api/doctor", get(admin::api::doctor))
        .route("/api/logs", get(admin::api::logs))
        .route(
            "/api/graph",
            get(admin::api::facts).delete(admin::api::forget_facts),
        )
        .route("/api/graph/{id}", delete(admin::api::forget_fact))
        .fallback(routes::health::not_found)
        .method_not_allowed_fallback(routes::health::method_not_allowed)
        .with_state(state.clone());
    let dashboard = from_fn_with_state(state.clone(), admin::guard).layer(routes);
    let authenticated = from_fn_with_state(state.clone(), guard::authenticate).layer(dashboard);
    let guarded = from_fn_with_state(state, guard::edge).layer(authenticated);
    Router::new().fallback_service(guarded)
}

/// Serves until `shutdown` is cancelled; open streams end with an `error` event, then the
/// server stops.
pub async fn serve(
    listener: TcpListener,
    state: GatewayState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = router(state);
    // Stream events are small writes that must leave at once: no Nagle delay.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
