//! `/api/…`: the dashboard's JSON API and its live feed.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use moe_sovereign_telemetry::{LiveEvent, TraceFilter};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Action, Admin, AdminError, SECRET_HEADER, cookie_name};
use crate::{GatewayError, GatewayState};

fn admin(state: &GatewayState) -> Result<&Admin, GatewayError> {
    state
        .admin
        .as_deref()
        .ok_or_else(|| GatewayError::NotFound("the dashboard is not served here".into()))
}

/// Runs a backend action on the blocking pool (keychain and file work may block).
async fn call(state: &GatewayState, action: Action) -> Result<Json<Value>, GatewayError> {
    let backend = admin(state)?.backend.clone();
    let answer = tokio::task::spawn_blocking(move || backend.call(action))
        .await
        .map_err(|e| GatewayError::Internal(format!("the dashboard action failed: {e}")))?;
    Ok(Json(answer?))
}

/// The JSON body of a change, read within the gateway's body limit (a 413 envelope past it).
async fn parse_json<T: serde::de::DeserializeOwned>(
    state: &GatewayState,
    body: Body,
) -> Result<T, GatewayError> {
    let body = crate::routes::read_body(body, state.settings.max_body_bytes).await?;
    serde_json::from_slice(&body)
        .map_err(|e| GatewayError::InvalidRequest(format!("invalid JSON body: {e}")))
}

/// The admin, when the request shows the home folder's secret.
fn with_secret<'a>(
    state: &'a GatewayState,
    headers: &HeaderMap,
    what: &str,
) -> Result<&'a Admin, GatewayError> {
    let admin = admin(state)?;
    let presented = headers
        .get(SECRET_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if admin.secret_matches(presented) {
        Ok(admin)
    } else {
        Err(GatewayError::Unauthenticated(format!(
            "{what} needs the secret from this user's home folder"
        )))
    }
}

/// `POST /api/login-link` with the home folder's secret: a one-time login URL.
pub async fn login_link(
    State(state): State<GatewayState>,
    headers: HeaderMap,
) -> Result<Json<Value>, GatewayError> {
    let admin = with_secret(&state, &headers, "a login link")?;
    Ok(Json(json!({ "url": admin.login_url(state.settings.port) })))
}

/// `POST /api/shutdown` with the home folder's secret: stops this gateway the way a signal
/// does (open streams end with an `error` event). The tray app uses it to take the port over
/// from a `moe-sovereign serve` of the same user.
pub async fn shutdown(
    State(state): State<GatewayState>,
    headers: HeaderMap,
) -> Result<Json<Value>, GatewayError> {
    with_secret(&state, &headers, "stopping the gateway")?;
    tracing::info!("asked to stop by the owner of this home folder (the tray app takes over)");
    state.shutdown.cancel();
    Ok(Json(json!({ "stopping": true })))
}

#[derive(Deserialize)]
struct Redeem {
    token: String,
}

/// `POST /api/session {"token"}`: the login link's token for a session cookie.
pub async fn session(
    State(state): State<GatewayState>,
    body: Body,
) -> Result<Response, GatewayError> {
    let Redeem { token } = parse_json(&state, body).await?;
    let Some(session) = admin(&state)?.sessions.redeem(&token) else {
        return Err(GatewayError::Unauthenticated(
            "this login link was already used or has expired: run `moe-sovereign ui` again".into(),
        ));
    };
    let cookie = format!(
        "{}={session}; Path=/; HttpOnly; SameSite=Strict",
        cookie_name(state.settings.port)
    );
    let mut response = Json(json!({ "ok": true })).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// `POST /api/logout`.
pub async fn logout(State(state): State<GatewayState>, headers: HeaderMap) -> Response {
    let name = cookie_name(state.settings.port);
    if let (Ok(admin), Some(session)) = (admin(&state), super::session_cookie(&headers, &name)) {
        admin.sessions.end(session);
    }
    let mut response = Json(json!({ "ok": true })).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
    )) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `GET /api/overview`: the gateway's counters, the latest sample and the last five minutes.
pub async fn overview(State(state): State<GatewayState>) -> Result<Json<Value>, GatewayError> {
    let admin = admin(&state)?;
    let now = moe_sovereign_telemetry::now_ms();
    let (requests, output_tokens) = state.hub.traces().since(now.saturating_sub(60_000));
    Ok(Json(json!({
        "gateway": {
            "version": env!("CARGO_PKG_VERSION"),
            "port": state.settings.port,
            "uptime_s": admin.started.elapsed().as_secs(),
            "in_flight": state.in_flight.count(),
            "queued": state.routes.current().experts().iter().map(|e| e.waiting()).sum::<usize>(),
            "requests_last_minute": requests,
            "output_tokens_last_minute": output_tokens,
        },
        "telemetry": {
            "latest": state.hub.history().latest(),
            "history": state.hub.history().since(now.saturating_sub(300_000)),
        },
    })))
}

#[derive(Deserialize)]
pub struct RequestsQuery {
    #[serde(flatten)]
    filter: TraceFilter,
    #[serde(default)]
    limit: Option<usize>,
}

/// `GET /api/requests?key=&profile=&status=&limit=`: traces, newest first.
pub async fn requests(
    State(state): State<GatewayState>,
    Query(query): Query<RequestsQuery>,
) -> Json<Value> {
    let limit = query
        .limit
        .unwrap_or(200)
        .min(moe_sovereign_telemetry::traces::CAPACITY);
    Json(json!({ "data": state.hub.traces().list(&query.filter, limit) }))
}

/// `GET /api/keys`: keys with when each was last used (since the gateway started).
pub async fn keys(State(state): State<GatewayState>) -> Result<Json<Value>, GatewayError> {
    let Json(mut keys) = call(&state, Action::Keys).await?;
    if let Some(rows) = keys.get_mut("data").and_then(Value::as_array_mut) {
        for row in rows {
            let used = row["id"]
                .as_str()
                .and_then(|id| state.hub.traces().last_used(id));
            row["last_used_ms"] = json!(used);
        }
    }
    Ok(Json(keys))
}

#[derive(Deserialize)]
struct CreateKey {
    #[serde(default)]
    name: Option<String>,
    profile: String,
}

/// `POST /api/keys {"name", "profile"}`: the new key, its value included (the only time).
pub async fn create_key(
    State(state): State<GatewayState>,
    body: Body,
) -> Result<Json<Value>, GatewayError> {
    let CreateKey { name, profile } = parse_json(&state, body).await?;
    call(&state, Action::CreateKey { name, profile }).await
}

/// `DELETE /api/keys/{id}`.
pub async fn revoke_key(
    State(state): State<GatewayState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, GatewayError> {
    call(&state, Action::RevokeKey { id }).await
}

#[derive(Deserialize)]
struct SetProfile {
    profile: String,
}

/// `PUT /api/keys/{id}/profile {"profile"}` (`default` names the default key).
pub async fn set_profile(
    State(state): State<GatewayState>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Value>, GatewayError> {
    let SetProfile { profile } = parse_json(&state, body).await?;
    let id = (id != "default").then_some(id);
    call(&state, Action::SetProfile { id, profile }).await
}

#[derive(Deserialize)]
pub struct ProfilesQuery {
    #[serde(default)]
    key: Option<String>,
}

/// `GET /api/profiles?key=ID`: the `profiles list --json` rows.
pub async fn profiles(
    State(state): State<GatewayState>,
    Query(query): Query<ProfilesQuery>,
) -> Result<Json<Value>, GatewayError> {
    call(&state, Action::Profiles { id: query.key }).await
}

#[derive(Deserialize)]
pub struct FactsQuery {
    #[serde(default)]
    key_id: Option<String>,
    #[serde(default)]
    q: Option<String>,
}

/// `GET /api/graph?key_id=ID&q=WORDS`: knowledge-graph facts.
pub async fn facts(
    State(state): State<GatewayState>,
    Query(query): Query<FactsQuery>,
) -> Result<Json<Value>, GatewayError> {
    let key_id = query.key_id.filter(|k| !k.is_empty());
    call(
        &state,
        Action::Facts {
            key_id,
            query: query.q,
        },
    )
    .await
}

/// `DELETE /api/graph?key_id=ID`: forget every fact (of one key).
pub async fn forget_facts(
    State(state): State<GatewayState>,
    Query(query): Query<FactsQuery>,
) -> Result<Json<Value>, GatewayError> {
    let key_id = query.key_id.filter(|k| !k.is_empty());
    call(&state, Action::ForgetFacts { key_id }).await
}

/// `DELETE /api/graph/{id}`: forget one fact.
pub async fn forget_fact(
    State(state): State<GatewayState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, GatewayError> {
    let id = id
        .parse()
        .map_err(|_| GatewayError::InvalidRequest(format!("{id:?} is not a fact id")))?;
    call(&state, Action::ForgetFact { id }).await
}

/// `GET /api/experts`.
pub async fn experts(State(state): State<GatewayState>) -> Result<Json<Value>, GatewayError> {
    call(&state, Action::Experts).await
}

/// `PUT /api/profiles/{profile}` with `{"expert"}`, `{"model"}` or `{"kind", "base_url", "model"}`.
pub async fn bind_profile(
    State(state): State<GatewayState>,
    Path(profile): Path<String>,
    body: Body,
) -> Result<Json<Value>, GatewayError> {
    let target: Value = parse_json(&state, body).await?;
    call(&state, Action::BindProfile { profile, target }).await
}

/// `GET /api/models`.
pub async fn models(State(state): State<GatewayState>) -> Result<Json<Value>, GatewayError> {
    call(&state, Action::Models).await
}

#[derive(Deserialize)]
struct AddModel {
    path: String,
    #[serde(default)]
    name: Option<String>,
}

/// `POST /api/models {"path", "name"}`: registers a file on this machine.
pub async fn add_model(
    State(state): State<GatewayState>,
    body: Body,
) -> Result<Json<Value>, GatewayError> {
    let AddModel { path, name } = parse_json(&state, body).await?;
    call(&state, Action::AddModel { path, name }).await
}

#[derive(Deserialize)]
struct PullModel {
    #[serde(default)]
    repo: Option<String>,
    #[serde(default)]
    file: Option<String>,
}

/// `POST /api/models/pick`: the tray's file picker, then the same registration as a path.
pub async fn pick_model(State(state): State<GatewayState>) -> Result<Json<Value>, GatewayError> {
    call(&state, Action::PickModel).await
}

/// `POST /api/models/pull {"repo", "file"}`: starts a download; progress comes on `/api/events`.
pub async fn pull_model(
    State(state): State<GatewayState>,
    body: Body,
) -> Result<Json<Value>, GatewayError> {
    let PullModel { repo, file } = parse_json(&state, body).await?;
    call(&state, Action::PullModel { repo, file }).await
}

/// `POST /api/models/{name}/load`: loads it now; answers when it is in memory.
pub async fn load_model(
    State(state): State<GatewayState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, GatewayError> {
    call(&state, Action::LoadModel { name }).await
}

/// `POST /api/models/{name}/unload`.
pub async fn unload_model(
    State(state): State<GatewayState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, GatewayError> {
    call(&state, Action::UnloadModel { name }).await
}

/// `DELETE /api/models/{name}`.
pub async fn remove_model(
    State(state): State<GatewayState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, GatewayError> {
    call(&state, Action::RemoveModel { name }).await
}

/// `POST /api/wiring/{target}/wire`.
pub async fn wire(
    State(state): State<GatewayState>,
    Path(target): Path<String>,
) -> Result<Json<Value>, GatewayError> {
    call(&state, Action::Wire { target }).await
}

/// `POST /api/wiring/{target}/unwire`.
pub async fn unwire(
    State(state): State<GatewayState>,
    Path(target): Path<String>,
) -> Result<Json<Value>, GatewayError> {
    call(&state, Action::Unwire { target }).await
}

#[derive(Deserialize)]
struct Restore {
    file: String,
    backup: String,
}

/// `POST /api/wiring/restore {"file", "backup"}`.
pub async fn restore_backup(
    State(state): State<GatewayState>,
    body: Body,
) -> Result<Json<Value>, GatewayError> {
    let Restore { file, backup } = parse_json(&state, body).await?;
    call(&state, Action::RestoreBackup { file, backup }).await
}

/// `GET /api/wiring`.
pub async fn wiring(State(state): State<GatewayState>) -> Result<Json<Value>, GatewayError> {
    call(&state, Action::Wiring).await
}

/// `GET /api/doctor`.
pub async fn doctor(State(state): State<GatewayState>) -> Result<Json<Value>, GatewayError> {
    call(&state, Action::Doctor).await
}

#[derive(Deserialize)]
pub struct LogsQuery {
    #[serde(default)]
    level: Option<String>,
}

/// `GET /api/logs?level=warn`.
pub async fn logs(
    State(state): State<GatewayState>,
    Query(query): Query<LogsQuery>,
) -> Result<Json<Value>, GatewayError> {
    let level = query.level.filter(|l| !l.is_empty());
    call(&state, Action::Logs { level }).await
}

/// `GET /api/events`: the live feed as SSE (telemetry samples at 1 Hz while it is open, request
/// traces, wiring and model events). Ends when the gateway shuts down.
pub async fn events(State(state): State<GatewayState>) -> Response {
    let mut response = Body::from_stream(live(state)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    *response.status_mut() = StatusCode::OK;
    response
}

/// Keep-alive comment period, so proxies and browsers see a live connection.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

fn live(state: GatewayState) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let (mut receiver, guard) = state.hub.watch();
    let shutdown = state.shutdown.clone();
    moe_sovereign_experts::generator(move |out| async move {
        let _guard = guard;
        if !out.send(Ok(Bytes::from_static(b": live\n\n"))).await {
            return;
        }
        loop {
            let frame = tokio::select! {
                () = shutdown.cancelled() => return,
                next = tokio::time::timeout(KEEP_ALIVE, receiver.recv()) => match next {
                    Err(_quiet) => Bytes::from_static(b": keep-alive\n\n"),
                    Ok(Ok(event)) => frame(&event),
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return,
                },
            };
            if !out.send(Ok(frame)).await {
                return;
            }
        }
    })
}

fn frame(event: &LiveEvent) -> Bytes {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".into());
    Bytes::from(format!("event: {}\ndata: {data}\n\n", event.name()))
}

/// Errors the backend reports, as HTTP.
impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        GatewayError::from(self).into_response()
    }
}
