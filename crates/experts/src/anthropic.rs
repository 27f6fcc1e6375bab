//! `kind = "anthropic"`: forwards to another Anthropic-compatible gateway, event by event.

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use moe_sovereign_anthropic::{ContentBlock, Delta, StopReason, StreamEvent};
use serde_json::Value;

use crate::upstream::{self, async_stream};
use crate::{
    Expert, ExpertError, ExpertEvent, ExpertRequest, ExpertStream, Secret, UsageUpdate,
    estimate_tokens,
};

/// A remote Anthropic-compatible server.
#[derive(Debug)]
pub struct AnthropicExpert {
    name: String,
    base_url: String,
    model: Option<String>,
    api_key: Option<Secret>,
    client: reqwest::Client,
}

impl AnthropicExpert {
    /// `base_url` without `/v1`; `model` replaces the client's model id when set.
    pub fn new(name: &str, base_url: &str, model: Option<String>, api_key: Option<Secret>) -> Self {
        Self {
            name: name.to_owned(),
            base_url: base_url
                .trim_end_matches('/')
                .trim_end_matches("/v1")
                .to_owned(),
            model,
            api_key,
            client: upstream::client(),
        }
    }

    fn post(&self, path: &str, request: &ExpertRequest, body: &Value) -> reqwest::RequestBuilder {
        let mut builder = self
            .client
            .post(format!("{}{path}", self.base_url))
            .header(
                "anthropic-version",
                request.anthropic_version.as_deref().unwrap_or("2023-06-01"),
            )
            .json(body);
        if let Some(beta) = &request.anthropic_beta {
            builder = builder.header("anthropic-beta", beta);
        }
        if let Some(key) = &self.api_key {
            builder = builder.header("x-api-key", key.expose());
        }
        builder
    }

    fn body(&self, request: &ExpertRequest, stream: bool) -> Result<Value, ExpertError> {
        let mut body = request.body.clone();
        if let Some(model) = &self.model {
            body.model = model.clone();
        }
        if stream {
            body.stream = Some(true);
        } else {
            body.stream = None;
            body.max_tokens = None;
        }
        serde_json::to_value(&body).map_err(|e| ExpertError::BadRequest(e.to_string()))
    }

    async fn start(&self, request: ExpertRequest) -> Result<ExpertStream, ExpertError> {
        let body = self.body(&request, true)?;
        let response = self
            .post("/v1/messages", &request, &body)
            .send()
            .await
            .map_err(|e| upstream::send_error(&self.name, &e))?;
        if !response.status().is_success() {
            return Err(upstream::status_error(&self.name, response).await);
        }
        let name = self.name.clone();
        let mut events = Box::pin(upstream::sse_events(name.clone(), response));
        let stream = async_stream(move |out| async move {
            let mut stop: Option<(StopReason, Option<String>)> = None;
            while let Some(item) = events.next().await {
                let sse = match item {
                    Ok(sse) => sse,
                    Err(error) => {
                        out.send(Err(error)).await;
                        return;
                    }
                };
                let event: StreamEvent = match serde_json::from_str(&sse.data) {
                    Ok(event) => event,
                    // Unknown event types are allowed by the protocol; skip them.
                    Err(_) => continue,
                };
                for item in translate(&name, event, &mut stop) {
                    let done = matches!(item, Ok(ExpertEvent::Stop { .. }) | Err(_));
                    if done {
                        upstream::drain(&mut events).await;
                    }
                    if !out.send(item).await || done {
                        return;
                    }
                }
            }
            let end = match stop {
                Some((reason, stop_sequence)) => Ok(ExpertEvent::Stop {
                    reason,
                    stop_sequence,
                }),
                None => Err(ExpertError::Upstream(format!(
                    "expert {name:?}: upstream stream ended before message_stop"
                ))),
            };
            out.send(end).await;
        });
        Ok(stream.boxed())
    }

    async fn count(&self, request: ExpertRequest) -> Result<u64, ExpertError> {
        let body = self.body(&request, false)?;
        let response = self
            .post("/v1/messages/count_tokens", &request, &body)
            .send()
            .await
            .map_err(|e| upstream::send_error(&self.name, &e))?;
        match response.status().as_u16() {
            200 => {
                let value: Value = response
                    .json()
                    .await
                    .map_err(|e| ExpertError::Upstream(e.to_string()))?;
                value
                    .get("input_tokens")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| {
                        ExpertError::Upstream(format!(
                            "expert {:?}: count_tokens answer without input_tokens",
                            self.name
                        ))
                    })
            }
            // The upstream cannot count: estimate rather than fail.
            404 | 405 | 501 => Ok(estimate_tokens(&request.body)),
            _ => Err(upstream::status_error(&self.name, response).await),
        }
    }
}

/// One upstream stream event → expert events. `stop` collects the `message_delta` stop reason.
fn translate(
    expert: &str,
    event: StreamEvent,
    stop: &mut Option<(StopReason, Option<String>)>,
) -> Vec<Result<ExpertEvent, ExpertError>> {
    match event {
        StreamEvent::MessageStart { message } => vec![Ok(ExpertEvent::Usage(UsageUpdate {
            input_tokens: Some(message.usage.input_tokens),
            output_tokens: None,
            cache_read_input_tokens: Some(message.usage.cache_read_input_tokens),
            cache_creation_input_tokens: Some(message.usage.cache_creation_input_tokens),
        }))],
        StreamEvent::ContentBlockStart { content_block, .. } => match content_block {
            ContentBlock::ToolUse { id, name, .. } => {
                vec![Ok(ExpertEvent::ToolUseStart { id, name })]
            }
            ContentBlock::RedactedThinking { data, .. } => {
                vec![Ok(ExpertEvent::RedactedThinking(data))]
            }
            ContentBlock::Text { text, .. } if !text.is_empty() => {
                vec![Ok(ExpertEvent::Text(text))]
            }
            _ => Vec::new(),
        },
        StreamEvent::ContentBlockDelta { delta, .. } => match delta {
            Delta::TextDelta { text } => vec![Ok(ExpertEvent::Text(text))],
            Delta::InputJsonDelta { partial_json } => {
                vec![Ok(ExpertEvent::ToolInputDelta(partial_json))]
            }
            Delta::ThinkingDelta { thinking } => vec![Ok(ExpertEvent::Thinking(thinking))],
            Delta::SignatureDelta { signature } => {
                vec![Ok(ExpertEvent::ThinkingSignature(signature))]
            }
            Delta::Other(_) => Vec::new(),
        },
        StreamEvent::ContentBlockStop { .. } => vec![Ok(ExpertEvent::BlockEnd)],
        StreamEvent::MessageDelta { delta, usage } => {
            if let Some(reason) = delta.stop_reason {
                *stop = Some((reason, delta.stop_sequence));
            }
            vec![Ok(ExpertEvent::Usage(UsageUpdate {
                input_tokens: (usage.input_tokens > 0).then_some(usage.input_tokens),
                output_tokens: Some(usage.output_tokens),
                cache_read_input_tokens: None,
                cache_creation_input_tokens: None,
            }))]
        }
        StreamEvent::MessageStop => {
            let (reason, stop_sequence) = stop.take().unwrap_or((StopReason::EndTurn, None));
            vec![Ok(ExpertEvent::Stop {
                reason,
                stop_sequence,
            })]
        }
        StreamEvent::Ping => Vec::new(),
        StreamEvent::Error { error } => {
            let message = format!("expert {expert:?}: upstream error: {}", error.message);
            vec![Err(match error.kind.status() {
                529 => ExpertError::overloaded(message),
                429 => ExpertError::RateLimited {
                    message,
                    retry_after: None,
                },
                401 | 403 => ExpertError::UpstreamAuth(message),
                400..=499 => ExpertError::BadRequest(message),
                _ => ExpertError::Upstream(message),
            })]
        }
    }
}

impl Expert for AnthropicExpert {
    fn name(&self) -> &str {
        &self.name
    }

    fn model_label(&self) -> String {
        self.model.clone().unwrap_or_else(|| self.base_url.clone())
    }

    fn stream(&self, request: ExpertRequest) -> BoxFuture<'_, Result<ExpertStream, ExpertError>> {
        self.start(request).boxed()
    }

    fn count_tokens(&self, request: ExpertRequest) -> BoxFuture<'_, Result<u64, ExpertError>> {
        self.count(request).boxed()
    }
}
