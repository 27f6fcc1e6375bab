//! A fake Hugging Face hub serving one real file the way the hub does: `GET /api/models/REPO`
//! lists it, `/REPO/resolve/main/FILE` redirects to storage with the LFS sha256 and size in
//! `X-Linked-Etag` / `X-Linked-Size`, and storage honours `Range`. It can break a transfer off
//! after some bytes (to prove resuming) or serve one flipped byte (to prove verification).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;

/// What the hub does with the next full download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mischief {
    /// Serves the file faithfully.
    None,
    /// Sends this many bytes of the next download, then breaks the connection.
    CutAfter(usize),
    /// Flips one byte in the middle of every download.
    Corrupt,
}

struct Hub {
    repo: String,
    files: Vec<(String, Bytes)>,
    sha256: String,
    mischief: Mutex<Mischief>,
    ranges: Mutex<Vec<Option<String>>>,
}

/// A running fake hub.
pub struct FakeHub {
    /// `http://127.0.0.1:PORT`, for `HF_ENDPOINT`.
    pub url: String,
    hub: Arc<Hub>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FakeHub {
    /// A hub whose `repo` holds `files` (name, bytes); every file is published with the sha256
    /// of the first one's bytes, so serve only one unless the checksum does not matter.
    pub fn start(repo: &str, files: Vec<(String, Vec<u8>)>, mischief: Mischief) -> Self {
        let sha256 = files
            .first()
            .map(|(_, bytes)| {
                use sha2::Digest;
                hex::encode(sha2::Sha256::digest(bytes))
            })
            .unwrap_or_default();
        let hub = Arc::new(Hub {
            repo: repo.to_owned(),
            files: files
                .into_iter()
                .map(|(name, bytes)| (name, Bytes::from(bytes)))
                .collect(),
            sha256,
            mischief: Mutex::new(mischief),
            ranges: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/api/models/{owner}/{name}", get(list))
            .route("/{owner}/{name}/resolve/main/{file}", get(resolve))
            .route("/storage/{file}", get(storage))
            .with_state(hub.clone());
        let (addr, stop) = crate::fake_upstream::serve_in_thread(app);
        Self {
            url: format!("http://{addr}"),
            hub,
            _stop: stop,
        }
    }

    /// The `Range` header of every storage request so far (`None`: a whole-file request).
    pub fn ranges(&self) -> Vec<Option<String>> {
        self.hub.ranges.lock().unwrap().clone()
    }

    /// Changes what the next downloads get.
    pub fn set_mischief(&self, mischief: Mischief) {
        *self.hub.mischief.lock().unwrap() = mischief;
    }
}

async fn list(
    State(hub): State<Arc<Hub>>,
    Path((owner, name)): Path<(String, String)>,
) -> Response {
    if format!("{owner}/{name}") != hub.repo {
        return (StatusCode::NOT_FOUND, "Repository not found").into_response();
    }
    let siblings: Vec<_> = hub
        .files
        .iter()
        .map(|(file, _)| serde_json::json!({ "rfilename": file }))
        .chain([serde_json::json!({ "rfilename": "README.md" })])
        .collect();
    axum::Json(serde_json::json!({ "id": hub.repo, "siblings": siblings })).into_response()
}

async fn resolve(
    State(hub): State<Arc<Hub>>,
    Path((owner, name, file)): Path<(String, String, String)>,
) -> Response {
    let Some((_, bytes)) = hub.files.iter().find(|(f, _)| *f == file) else {
        return (StatusCode::NOT_FOUND, "Entry not found").into_response();
    };
    if format!("{owner}/{name}") != hub.repo {
        return (StatusCode::NOT_FOUND, "Repository not found").into_response();
    }
    (
        StatusCode::FOUND,
        [
            (header::LOCATION.as_str(), format!("/storage/{file}")),
            ("x-linked-etag", format!("\"{}\"", hub.sha256)),
            ("x-linked-size", bytes.len().to_string()),
            (header::ETAG.as_str(), "\"git-sha1-not-the-content\"".into()),
        ],
    )
        .into_response()
}

async fn storage(
    State(hub): State<Arc<Hub>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some((_, bytes)) = hub.files.iter().find(|(f, _)| *f == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split('-').next())
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0)
        .min(bytes.len());
    let end = range
        .as_deref()
        .and_then(|r| r.split('-').nth(1))
        .and_then(|s| s.parse::<usize>().ok())
        .map_or(bytes.len(), |e| (e + 1).min(bytes.len()));
    let is_probe = end - start == 1;
    if !is_probe {
        hub.ranges.lock().unwrap().push(range.clone());
    }
    let mut body = bytes.slice(start..end).to_vec();
    let mischief = *hub.mischief.lock().unwrap();
    if mischief == Mischief::Corrupt && !is_probe {
        let middle = bytes.len() / 2;
        if (start..end).contains(&middle) {
            body[middle - start] ^= 0xff;
        }
    }
    let status = if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut response_headers = vec![(header::CONTENT_LENGTH, body.len().to_string())];
    if range.is_some() {
        response_headers.push((
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{}", end - 1, bytes.len()),
        ));
    }
    let body = match mischief {
        Mischief::CutAfter(n) if !is_probe && n < body.len() => {
            *hub.mischief.lock().unwrap() = Mischief::None;
            let head = Bytes::from(body[..n].to_vec());
            // Let the head reach the client before the connection breaks.
            let cut = futures::stream::once(async {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                Err(std::io::Error::other("connection cut by the fake hub"))
            });
            let stream = futures::StreamExt::chain(futures::stream::iter([Ok(head)]), cut);
            Body::from_stream(stream)
        }
        _ => Body::from(body),
    };
    let mut response = (status, body).into_response();
    for (name, value) in response_headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}
