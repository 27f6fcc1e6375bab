//! Edge middleware: request ids, Host/Origin checks (DNS rebinding, cross-site requests), and
//! API-key authentication.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::{GatewayError, LoggedError};
use crate::routes::refuse;
use crate::routes::table::{Access, ROUTES};
use crate::state::{GatewayState, Settings};

/// Outermost layer: every response gets a `request-id`; Host and Origin are checked first.
pub async fn edge(State(state): State<GatewayState>, request: Request, next: Next) -> Response {
    let id = request_id();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = match check_host_and_origin(&state.settings, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(error) => refuse(request, error).await,
    };
    if let Some(LoggedError(message)) = response.extensions().get::<LoggedError>() {
        let status = response.status().as_u16();
        if status >= 500 {
            tracing::error!(request_id = %id, %method, %path, status, "{message}");
        } else {
            tracing::debug!(request_id = %id, %method, %path, status, "{message}");
        }
    } else {
        tracing::debug!(request_id = %id, %method, %path, status = response.status().as_u16());
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("request-id", value);
    }
    response
}

fn request_id() -> String {
    let mut bytes = [0u8; 12];
    let _ = getrandom::fill(&mut bytes);
    format!("req_{}", hex::encode(bytes))
}

/// Host must name this machine's loopback with our port; an Origin must be our own UI.
pub fn check_host_and_origin(settings: &Settings, headers: &HeaderMap) -> Result<(), GatewayError> {
    if !settings.allow_any_host {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !is_loopback_authority(host, settings.port) {
            return Err(GatewayError::Forbidden(format!(
                "Host {host:?} is not this gateway (expected 127.0.0.1:{port} or localhost:{port})",
                port = settings.port
            )));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let own = origin
            .strip_prefix("http://")
            .is_some_and(|authority| is_loopback_authority(authority, settings.port));
        if !own {
            return Err(GatewayError::Forbidden(format!(
                "cross-origin requests are refused (Origin {origin:?})"
            )));
        }
    }
    Ok(())
}

fn is_loopback_authority(authority: &str, port: u16) -> bool {
    let authority = authority.to_ascii_lowercase();
    let (host, host_port) = match authority.rsplit_once(':') {
        Some((host, p)) if !host.ends_with(':') && !p.contains(']') => (host, p.parse().ok()),
        _ => (authority.as_str(), Some(80)),
    };
    host_port == Some(port) && matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

/// Routes open without a key (the route table's `Open` ones: Claude Code's preconnect probe and
/// the health check).
fn is_open(request: &Request) -> bool {
    let path = request.uri().path();
    matches!(*request.method(), Method::GET | Method::HEAD)
        && ROUTES
            .iter()
            .any(|r| r.access == Access::Open && r.path == path)
}

/// API-key check for every route but the open ones (unknown routes included, so nothing about
/// the surface is revealed without a key): `x-api-key` or `Authorization: Bearer`.
pub async fn authenticate(
    State(state): State<GatewayState>,
    mut request: Request,
    next: Next,
) -> Response {
    if is_open(&request) {
        return next.run(request).await;
    }
    // The dashboard has sessions of its own (admin::guard); API keys never open it.
    if state.admin.is_some() && crate::admin::is_admin_path(request.uri().path()) {
        return next.run(request).await;
    }
    let Some(key) = presented_key(request.headers()) else {
        let error = GatewayError::Unauthenticated(
            "missing API key: send it as x-api-key or Authorization: Bearer".into(),
        );
        return refuse(request, error).await;
    };
    let Some(caller) = state.auth.authenticate(key) else {
        let error = GatewayError::Unauthenticated("invalid API key".into());
        return refuse(request, error).await;
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        let key = key.trim();
        if !key.is_empty() {
            return Some(key);
        }
    }
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    fn settings() -> Settings {
        Settings {
            port: 8742,
            ..Settings::default()
        }
    }

    #[test]
    fn loopback_hosts_with_our_port_pass() {
        for host in [
            "127.0.0.1:8742",
            "localhost:8742",
            "[::1]:8742",
            "LOCALHOST:8742",
        ] {
            let h = HeaderMap::from_iter([(header::HOST, HeaderValue::from_static(host))]);
            assert!(check_host_and_origin(&settings(), &h).is_ok(), "{host}");
        }
    }

    #[test]
    fn rebinding_and_wrong_ports_are_refused() {
        for host in [
            "evil.example:8742",
            "127.0.0.1:9999",
            "127.0.0.1",
            "localhost.evil.example:8742",
            "",
            "[::1]",
        ] {
            let h = HeaderMap::from_iter([(header::HOST, HeaderValue::from_static(host))]);
            assert!(check_host_and_origin(&settings(), &h).is_err(), "{host}");
        }
    }

    #[test]
    fn foreign_origins_are_refused_and_our_own_allowed() {
        let foreign = headers(&[
            ("host", "127.0.0.1:8742"),
            ("origin", "https://evil.example"),
        ]);
        assert!(check_host_and_origin(&settings(), &foreign).is_err());
        let null = headers(&[("host", "127.0.0.1:8742"), ("origin", "null")]);
        assert!(check_host_and_origin(&settings(), &null).is_err());
        let own = headers(&[
            ("host", "127.0.0.1:8742"),
            ("origin", "http://127.0.0.1:8742"),
        ]);
        assert!(check_host_and_origin(&settings(), &own).is_ok());
    }

    #[test]
    fn keys_come_from_x_api_key_or_bearer() {
        assert_eq!(presented_key(&headers(&[("x-api-key", "a")])), Some("a"));
        assert_eq!(
            presented_key(&headers(&[("authorization", "Bearer b")])),
            Some("b")
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "Basic c")])),
            None
        );
        assert_eq!(presented_key(&headers(&[("x-api-key", "")])), None);
    }
}
