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
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::Layer;

pub use error::GatewayError;
pub use state::{Authenticator, Caller, GatewayState, Routes, Settings};

/// The whole HTTP surface. The guards wrap the complete router as one service, so they run for
/// unknown routes and methods too (`Router::layer` would skip the fallbacks).
pub fn router(state: GatewayState) -> Router {
    let routes = routes::table::ROUTES
        .iter()
        .fold(Router::new(), |router, route| {
            router.route(route.path, route.method_router())
        })
        .fallback(routes::health::not_found)
        .method_not_allowed_fallback(routes::health::method_not_allowed)
        .with_state(state.clone());
    let buffered = from_fn_with_state(state.clone(), routes::buffered).layer(routes);
    let dashboard = from_fn_with_state(state.clone(), admin::guard).layer(buffered);
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
