//! The dashboard's files (`ui/` at the repository root), embedded in the binary: no network,
//! no CDN, nothing to install.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::GatewayError;

macro_rules! ui_file {
    ($path:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../ui/", $path))
    };
}

/// Every file: (name under `/ui/assets/`, content type, bytes).
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        ui_file!("assets/app.js"),
    ),
    (
        "charts.js",
        "text/javascript; charset=utf-8",
        ui_file!("assets/charts.js"),
    ),
    (
        "login.js",
        "text/javascript; charset=utf-8",
        ui_file!("assets/login.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        ui_file!("assets/style.css"),
    ),
    ("icon.svg", "image/svg+xml", ui_file!("assets/icon.svg")),
];

const INDEX: &[u8] = ui_file!("index.html");
const LOGIN: &[u8] = ui_file!("login.html");

fn html(bytes: &'static [u8]) -> Response {
    let mut response = bytes.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// `GET /ui` → `/ui/`.
pub async fn root() -> Redirect {
    Redirect::permanent("/ui/")
}

/// `GET /ui/` (and any page path under it: the app routes by `#`).
pub async fn index() -> Response {
    html(INDEX)
}

/// `GET /ui/login`: reads the token from the URL's fragment and trades it for a session.
pub async fn login() -> Response {
    html(LOGIN)
}

/// `GET /ui/assets/{file}`.
pub async fn asset(Path(file): Path<String>) -> Result<Response, GatewayError> {
    let (_, kind, bytes) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .ok_or_else(|| GatewayError::NotFound(format!("no such file: /ui/assets/{file}")))?;
    let mut response = bytes.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    Ok(response)
}

/// The embedded files' total size (the budget is 300 KB).
pub fn total_size() -> usize {
    ASSETS.iter().map(|(_, _, b)| b.len()).sum::<usize>() + INDEX.len() + LOGIN.len()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_whole_ui_stays_within_300_kb() {
        assert!(super::total_size() <= 300 * 1024, "{}", super::total_size());
    }
}
