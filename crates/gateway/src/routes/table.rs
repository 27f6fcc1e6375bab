//! Every route the gateway serves, in one table: the router is built from it, and the guard
//! tests walk it (`tests/e2e/routes.rs`), so no route can be added without being checked.

use axum::routing::{MethodRouter, delete, get, post, put};

use crate::{GatewayState, admin, routes};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone on this machine: Claude Code's preconnect probe and the health check.
    Open,
    /// An API key (`x-api-key` or `Authorization: Bearer`).
    Key,
    /// A dashboard session; API keys are refused.
    Session,
    /// No session and no data: the login page, the token exchange, and requests that show the
    /// home folder's secret instead (a login link, stopping the gateway).
    Login,
}

/// One method of one route.
pub struct Route {
    /// `GET`, `POST`, `PUT`, `DELETE`.
    pub method: &'static str,
    /// The path, parameters in braces.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    handler: fn() -> MethodRouter<GatewayState>,
}

/// The files the login page needs: served without a session (no data in any of them).
pub const LOGIN_ASSETS: &[&str] = &[
    "/ui/assets/login.js",
    "/ui/assets/style.css",
    "/ui/assets/icon.svg",
];

macro_rules! route {
    ($method:ident $path:literal $access:ident => $handler:path) => {
        Route {
            method: const_method!($method),
            path: $path,
            access: Access::$access,
            handler: || $method($handler),
        }
    };
}

macro_rules! const_method {
    (get) => {
        "GET"
    };
    (post) => {
        "POST"
    };
    (put) => {
        "PUT"
    };
    (delete) => {
        "DELETE"
    };
}

/// The whole HTTP surface (`get` routes answer `HEAD` too).
pub const ROUTES: &[Route] = &[
    route!(get "/" Open => routes::health::root),
    route!(get "/health" Open => routes::health::health),
    route!(post "/v1/messages" Key => routes::messages::create),
    route!(post "/v1/messages/count_tokens" Key => routes::count_tokens::count),
    route!(get "/v1/models" Key => routes::models::list),
    route!(get "/v1/models/{id}" Key => routes::models::retrieve),
    route!(get "/ui" Session => admin::assets::root),
    route!(get "/ui/" Session => admin::assets::index),
    route!(get "/ui/login" Login => admin::assets::login),
    route!(get "/ui/assets/{file}" Session => admin::assets::asset),
    route!(post "/api/login-link" Login => admin::api::login_link),
    route!(post "/api/session" Login => admin::api::session),
    route!(post "/api/logout" Session => admin::api::logout),
    route!(post "/api/shutdown" Login => admin::api::shutdown),
    route!(get "/api/overview" Session => admin::api::overview),
    route!(get "/api/events" Session => admin::api::events),
    route!(get "/api/requests" Session => admin::api::requests),
    route!(get "/api/keys" Session => admin::api::keys),
    route!(post "/api/keys" Session => admin::api::create_key),
    route!(delete "/api/keys/{id}" Session => admin::api::revoke_key),
    route!(put "/api/keys/{id}/profile" Session => admin::api::set_profile),
    route!(get "/api/profiles" Session => admin::api::profiles),
    route!(put "/api/profiles/{profile}" Session => admin::api::bind_profile),
    route!(get "/api/experts" Session => admin::api::experts),
    route!(get "/api/models" Session => admin::api::models),
    route!(post "/api/models" Session => admin::api::add_model),
    route!(post "/api/models/pull" Session => admin::api::pull_model),
    route!(post "/api/models/pick" Session => admin::api::pick_model),
    route!(delete "/api/models/{name}" Session => admin::api::remove_model),
    route!(post "/api/models/{name}/load" Session => admin::api::load_model),
    route!(post "/api/models/{name}/unload" Session => admin::api::unload_model),
    route!(get "/api/wiring" Session => admin::api::wiring),
    route!(post "/api/wiring/restore" Session => admin::api::restore_backup),
    route!(post "/api/wiring/{target}/wire" Session => admin::api::wire),
    route!(post "/api/wiring/{target}/unwire" Session => admin::api::unwire),
    route!(get "/api/doctor" Session => admin::api::doctor),
    route!(get "/api/logs" Session => admin::api::logs),
    route!(get "/api/graph" Session => admin::api::facts),
    route!(delete "/api/graph" Session => admin::api::forget_facts),
    route!(delete "/api/graph/{id}" Session => admin::api::forget_fact),
];

impl Route {
    /// Its method router (routes of one path are merged by the router).
    pub fn method_router(&self) -> MethodRouter<GatewayState> {
        (self.handler)()
    }
}
