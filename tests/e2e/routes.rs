//! Guards on every route, enumerated: the walk covers the gateway's own route table (the one
//! the router is built from, not a hand-written sample) — each route and method, plain and
//! with `?beta=true` — against a rebinding Host, a foreign Origin, no key, a wrong key, an API
//! key where a dashboard session is needed, and an oversize body. Every refusal is an Anthropic
//! error envelope with the right status.

use moe_sovereign_e2e::Gateway;
use moe_sovereign_gateway::routes::table::{Access, LOGIN_ASSETS, ROUTES};
use reqwest::Method;
use serde_json::Value;

/// The route's path with its parameters filled in.
fn concrete(path: &str) -> String {
    path.replace("{file}", "app.js")
        .replace("{profile}", "moe_native")
        .replace("{target}", "claude-code")
        .replace("{id}", "x")
        .replace("{name}", "x")
}

struct Walk {
    url: String,
    key: String,
    client: reqwest::Client,
    failures: Vec<String>,
}

impl Walk {
    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> (u16, String) {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        // The client sets Host from the URL unless a case sets its own.
        let mut request = self.client.request(method, format!("{}{path}", self.url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// `what` must be refused with `status` and an error envelope.
    fn refused(&mut self, what: &str, (got, body): (u16, String), status: u16) {
        let envelope: Option<Value> = serde_json::from_str(&body).ok();
        let is_envelope = envelope.as_ref().is_some_and(|v| {
            v["type"] == "error"
                && v["error"]["type"].is_string()
                && v["error"]["message"].is_string()
        });
        if got != status || !is_envelope {
            self.failures.push(format!(
                "{what}: expected {status} + envelope, got {got}: {body:.200}"
            ));
        }
    }

    fn admitted(&mut self, what: &str, (got, body): (u16, String)) {
        if got == 401 || got == 403 || got == 413 {
            self.failures.push(format!(
                "{what}: should pass the guards, got {got}: {body:.200}"
            ));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_is_guarded() {
    // A small body limit, so that "oversize" is cheap to send.
    let gateway = Gateway::start("[gateway]\nmax_body_mib = 1\n", "moe_native");
    let mut walk = Walk {
        url: gateway.url.clone(),
        key: gateway.key.clone(),
        client: reqwest::Client::new(),
        failures: Vec::new(),
    };
    let own_origin = format!("http://127.0.0.1:{}", gateway.port);
    let oversize = vec![b' '; 1024 * 1024 + 4096];
    let session = gateway.admin_session().await;
    let mut walked = 0;
    for route in ROUTES {
        for query in ["", "?beta=true"] {
            let path = format!("{}{query}", concrete(route.path));
            let m = route.method;
            let what = |case: &str| format!("{m} {path} ({case})");
            let body = (m != "GET" && m != "HEAD").then(|| b"{}".to_vec());
            walked += 1;

            // The edge guards come first, whatever the route.
            let key = walk.key.clone();
            let auth = [("x-api-key", key.as_str())];
            let rebinding = walk
                .send(
                    m,
                    &path,
                    &[("host", "evil.example:80"), auth[0]],
                    body.clone(),
                )
                .await;
            walk.refused(&what("rebinding Host"), rebinding, 403);
            let foreign = walk
                .send(
                    m,
                    &path,
                    &[("origin", "http://evil.example"), auth[0]],
                    body.clone(),
                )
                .await;
            walk.refused(&what("foreign Origin"), foreign, 403);

            match route.access {
                Access::Open => {
                    let open = walk.send(m, &path, &[], body.clone()).await;
                    walk.admitted(&what("open, no key"), open);
                }
                Access::Key => {
                    let none = walk.send(m, &path, &[], body.clone()).await;
                    walk.refused(&what("no key"), none, 401);
                    let wrong = walk
                        .send(m, &path, &[("x-api-key", "moe-sk-wrong")], body.clone())
                        .await;
                    walk.refused(&what("wrong key"), wrong, 401);
                    let bearer = walk
                        .send(
                            m,
                            &path,
                            &[("authorization", "Bearer moe-sk-wrong")],
                            body.clone(),
                        )
                        .await;
                    walk.refused(&what("wrong bearer"), bearer, 401);
                    let right = walk.send(m, &path, &auth, body.clone()).await;
                    walk.admitted(&what("right key"), right);
                    if body.is_some() {
                        let big = walk.send(m, &path, &auth, Some(oversize.clone())).await;
                        walk.refused(&what("oversize body"), big, 413);
                    }
                }
                Access::Session | Access::Login => {
                    // An API key never opens the dashboard, not even a valid one.
                    let headers = [auth[0], ("origin", own_origin.as_str())];
                    let keyed = walk.send(m, &path, &headers, body.clone()).await;
                    walk.refused(&what("API key on an admin route"), keyed, 403);
                    let bearer = format!("Bearer {key}");
                    let headers = [
                        ("authorization", bearer.as_str()),
                        ("origin", own_origin.as_str()),
                    ];
                    let keyed = walk.send(m, &path, &headers, body.clone()).await;
                    walk.refused(&what("bearer key on an admin route"), keyed, 403);
                    let origin = [("origin", own_origin.as_str())];
                    let none = walk.send(m, &path, &origin, body.clone()).await;
                    if route.access == Access::Session {
                        walk.refused(&what("no session"), none, 401);
                    } else if m == "GET" {
                        walk.admitted(&what("login page, no session"), none);
                    }
                    if body.is_some() {
                        // Past the guards (a session), the body limit holds.
                        let signed_in = [
                            ("origin", own_origin.as_str()),
                            ("cookie", session.as_str()),
                        ];
                        let big = walk
                            .send(m, &path, &signed_in, Some(oversize.clone()))
                            .await;
                        walk.refused(&what("oversize body"), big, 413);
                    }
                }
            }
        }
    }
    // The login page's own files are the one documented exception to "no session".
    for asset in LOGIN_ASSETS {
        let open = walk.send("GET", asset, &[], None).await;
        walk.admitted(&format!("GET {asset} (login asset)"), open);
    }
    // A path or method the table does not have: refused without a key (nothing about the
    // surface is revealed), 404/405 envelopes with one.
    let key = walk.key.clone();
    let none = walk.send("GET", "/v1/nope", &[], None).await;
    walk.refused("GET /v1/nope (no key)", none, 401);
    let unknown = walk
        .send("GET", "/v1/nope", &[("x-api-key", &key)], None)
        .await;
    walk.refused("GET /v1/nope", unknown, 404);
    let wrong = walk
        .send(
            "PATCH",
            "/v1/messages",
            &[("x-api-key", &key)],
            Some(b"{}".to_vec()),
        )
        .await;
    walk.refused("PATCH /v1/messages", wrong, 405);
    assert!(walked >= 2 * 40, "the table has {} routes", ROUTES.len());
    assert!(
        walk.failures.is_empty(),
        "{} of the guard checks failed:\n{}",
        walk.failures.len(),
        walk.failures.join("\n")
    );
}
