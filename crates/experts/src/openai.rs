//! `kind = "openai"`: any OpenAI-compatible `/v1/chat/completions` server (vLLM, llama.cpp,
//! Ollama, LM Studio). Anthropic requests are converted on the way out, chunks on the way back.

mod convert;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::upstream::{self, async_stream};
use crate::{Expert, ExpertError, ExpertRequest, ExpertStream, Secret, estimate_tokens};

pub use convert::{ChunkTranslator, to_chat_completion};

/// A remote OpenAI-compatible server.
#[derive(Debug)]
pub struct OpenAiExpert {
    name: String,
    base_url: String,
    model: Option<String>,
    discovered_model: OnceCell<String>,
    api_key: Option<Secret>,
    client: reqwest::Client,
}

impl OpenAiExpert {
    /// `base_url` with or without `/v1`; without `model`, the server's first listed model is used.
    pub fn new(name: &str, base_url: &str, model: Option<String>, api_key: Option<Secret>) -> Self {
        Self {
            name: name.to_owned(),
            base_url: base_url
                .trim_end_matches('/')
                .trim_end_matches("/v1")
                .to_owned(),
            model,
            discovered_model: OnceCell::new(),
            api_key,
            client: upstream::client(),
        }
    }

    fn authorized(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.api_key {
            Some(key) => builder.bearer_auth(key.expose()),
            None => builder,
        }
    }

    /// The upstream model id: configured, or the first one `GET /v1/models` lists.
    async fn model(&self) -> Result<String, ExpertError> {
        if let Some(model) = &self.model {
            return Ok(model.clone());
        }
        self.discovered_model
            .get_or_try_init(|| async {
                let response = self
                    .authorized(self.client.get(format!("{}/v1/models", self.base_url)))
                    .send()
                    .await
                    .map_err(|e| upstream::send_error(&self.name, &e))?;
                if !response.status().is_success() {
                    return Err(upstream::status_error(&self.name, response).await);
                }
                let list: Value = response
                    .json()
                    .await
                    .map_err(|e| ExpertError::Upstream(e.to_string()))?;
                list.pointer("/data/0/id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        ExpertError::BadRequest(format!(
                            "expert {:?}: the upstream lists no model; set `model` in config.toml",
                            self.name
                        ))
                    })
            })
            .await
            .cloned()
    }

    async fn start(&self, request: ExpertRequest) -> Result<ExpertStream, ExpertError> {
        let model = self.model().await?;
        let body = to_chat_completion(&request.body, &model)?;
        let response = self
            .authorized(
                self.client
                    .post(format!("{}/v1/chat/completions", self.base_url))
                    .json(&body),
            )
            .send()
            .await
            .map_err(|e| upstream::send_error(&self.name, &e))?;
        if !response.status().is_success() {
            return Err(upstream::status_error(&self.name, response).await);
        }
        let name = self.name.clone();
        let stop_sequences = request.body.stop_sequences.clone().unwrap_or_default();
        let estimated_input = estimate_tokens(&request.body);
        let mut events = Box::pin(upstream::sse_events(name.clone(), response));
        let stream = async_stream(move |out| async move {
            let mut translator = ChunkTranslator::new(name, stop_sequences, estimated_input);
            while let Some(item) = events.next().await {
                let sse = match item {
                    Ok(sse) => sse,
                    Err(error) => {
                        out.send(Err(error)).await;
                        return;
                    }
                };
                if sse.data.trim() == "[DONE]" {
                    upstream::drain(&mut events).await;
                    break;
                }
                for item in translator.chunk(&sse.data) {
                    let failed = item.is_err();
                    if !out.send(item).await || failed {
                        return;
                    }
                }
            }
            for item in translator.finish() {
                if !out.send(item).await {
                    return;
                }
            }
        });
        Ok(stream.boxed())
    }
}

impl Expert for OpenAiExpert {
    fn name(&self) -> &str {
        &self.name
    }

    fn model_label(&self) -> String {
        self.model
            .clone()
            .or_else(|| self.discovered_model.get().cloned())
            .unwrap_or_else(|| self.base_url.clone())
    }

    fn stream(&self, request: ExpertRequest) -> BoxFuture<'_, Result<ExpertStream, ExpertError>> {
        self.start(request).boxed()
    }

    /// OpenAI-compatible servers have no standard way to count a chat request's tokens, so this
    /// is an estimate (see [`estimate_tokens`]).
    fn count_tokens(&self, request: ExpertRequest) -> BoxFuture<'_, Result<u64, ExpertError>> {
        futures::future::ready(Ok(estimate_tokens(&request.body))).boxed()
    }
}
