//! A scripted expert for the stages' unit tests: it answers its calls with canned event lists,
//! in order, and records every request it got.

use std::sync::{Arc, Mutex};

use futures::StreamExt;
use futures::future::BoxFuture;
use moe_sovereign_anthropic::{MessagesRequest, StopReason};
use moe_sovereign_experts::{
    Expert, ExpertError, ExpertEvent, ExpertRequest, ExpertStream, UsageUpdate,
};

pub struct Recording {
    name: String,
    replies: Mutex<Vec<Vec<Result<ExpertEvent, ExpertError>>>>,
    pub seen: Mutex<Vec<ExpertRequest>>,
}

impl Recording {
    pub fn new(name: &str, replies: Vec<Vec<Result<ExpertEvent, ExpertError>>>) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            replies: Mutex::new(replies),
            seen: Mutex::default(),
        })
    }

    pub fn requests(&self) -> Vec<MessagesRequest> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.body.clone())
            .collect()
    }
}

impl Expert for Recording {
    fn name(&self) -> &str {
        &self.name
    }
    fn model_label(&self) -> String {
        self.name.clone()
    }
    fn stream(&self, request: ExpertRequest) -> BoxFuture<'_, Result<ExpertStream, ExpertError>> {
        self.seen.lock().unwrap().push(request);
        let mut replies = self.replies.lock().unwrap();
        let reply = if replies.is_empty() {
            Vec::new()
        } else {
            replies.remove(0)
        };
        Box::pin(async move { Ok(futures::stream::iter(reply).boxed()) })
    }
    fn count_tokens(&self, request: ExpertRequest) -> BoxFuture<'_, Result<u64, ExpertError>> {
        self.seen.lock().unwrap().push(request);
        Box::pin(async { Ok(7) })
    }
}

/// A reply: usage (`input` in, `output` out), `text` as text, then a stop.
pub fn reply(input: u64, output: u64, text: &str) -> Vec<Result<ExpertEvent, ExpertError>> {
    vec![
        Ok(ExpertEvent::Usage(UsageUpdate {
            input_tokens: Some(input),
            ..UsageUpdate::default()
        })),
        Ok(ExpertEvent::Text(text.into())),
        Ok(ExpertEvent::Usage(UsageUpdate {
            output_tokens: Some(output),
            ..UsageUpdate::default()
        })),
        Ok(ExpertEvent::Stop {
            reason: StopReason::EndTurn,
            stop_sequence: None,
        }),
    ]
}

pub fn request(body: serde_json::Value) -> ExpertRequest {
    ExpertRequest {
        body: serde_json::from_value(body).unwrap(),
        anthropic_version: None,
        anthropic_beta: None,
        session: None,
        key_id: None,
        request_id: None,
    }
}

/// Every event of `stream`, errors as `Err`.
pub async fn drain(mut stream: ExpertStream) -> Vec<Result<ExpertEvent, ExpertError>> {
    let mut all = Vec::new();
    while let Some(item) = stream.next().await {
        all.push(item);
    }
    all
}

/// The reply a rule gives.
pub type Rule =
    Box<dyn Fn(&MessagesRequest) -> Vec<Result<ExpertEvent, ExpertError>> + Send + Sync>;

/// An expert answering by a rule over the request (order of calls does not matter), recording
/// every request.
pub struct Ruled {
    name: String,
    rule: Rule,
    pub seen: Mutex<Vec<MessagesRequest>>,
}

impl Ruled {
    pub fn new(name: &str, rule: Rule) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            rule,
            seen: Mutex::default(),
        })
    }

    pub fn requests(&self) -> Vec<MessagesRequest> {
        self.seen.lock().unwrap().clone()
    }
}

impl Expert for Ruled {
    fn name(&self) -> &str {
        &self.name
    }
    fn model_label(&self) -> String {
        self.name.clone()
    }
    fn stream(&self, request: ExpertRequest) -> BoxFuture<'_, Result<ExpertStream, ExpertError>> {
        let reply = (self.rule)(&request.body);
        self.seen.lock().unwrap().push(request.body);
        Box::pin(async move { Ok(futures::stream::iter(reply).boxed()) })
    }
    fn count_tokens(&self, _: ExpertRequest) -> BoxFuture<'_, Result<u64, ExpertError>> {
        Box::pin(async { Ok(11) })
    }
}

/// A reply that calls tool `name` with `input`.
pub fn tool_call(name: &str, input: serde_json::Value) -> Vec<Result<ExpertEvent, ExpertError>> {
    vec![
        Ok(ExpertEvent::ToolUseStart {
            id: "toolu_1".into(),
            name: name.into(),
        }),
        Ok(ExpertEvent::ToolInputDelta(input.to_string())),
        Ok(ExpertEvent::BlockEnd),
        Ok(ExpertEvent::Usage(UsageUpdate {
            input_tokens: Some(20),
            output_tokens: Some(9),
            ..UsageUpdate::default()
        })),
        Ok(ExpertEvent::Stop {
            reason: StopReason::ToolUse,
            stop_sequence: None,
        }),
    ]
}
