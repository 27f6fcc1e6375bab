//! The in-process expert: a registered GGUF model run by mistral.rs on this machine.
//!
//! The engine runs on its own thread (mistral.rs spawns it); loading happens on a blocking
//! thread with a runtime of its own, so the gateway's IO thread never stalls. A request goes to
//! the engine as a `NormalRequest` with our own channel; dropping the returned stream drops the
//! receiver, and the engine cancels the sequence at its next token.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use either::Either;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use indexmap::IndexMap;
use mistralrs::core::{
    AutoDeviceMapParams, DefaultSchedulerMethod, DeviceMapSetting, GGUFLoaderBuilder,
    GGUFSpecificConfig, MistralRsBuilder, ModelDType, SchedulerConfig, TokenSource,
    TokenizationRequest,
};
use mistralrs::{
    Constraint, Device, Function, MessageContent, Model, NormalRequest, Request, Response,
    SamplingParams, StopTokens, Tool, ToolChoice, ToolType,
};
use moe_sovereign_anthropic::MessagesRequest;
use moe_sovereign_experts::context;
use moe_sovereign_experts::openai::{ChunkTranslator, to_chat_completion};
use moe_sovereign_experts::{
    Expert, ExpertError, ExpertEvent, ExpertRequest, ExpertStream, UsageUpdate, generator,
};
use serde_json::Value;

use crate::registry::ModelEntry;
use crate::resident::{Residency, Slot};
use crate::tools::{self, Choice};

type Messages = Vec<IndexMap<String, MessageContent>>;

/// A local model behind the `Expert` trait.
pub struct LocalExpert {
    name: String,
    entry: ModelEntry,
    residency: Arc<Residency>,
    slot: Arc<Slot<Loaded>>,
}

/// A loaded model and the runtime that built it (the engine may keep tasks on it).
struct Loaded {
    engine: Engine,
    runtime: Option<tokio::runtime::Runtime>,
}

/// What a request needs of a loaded model.
#[derive(Clone)]
struct Engine {
    model: Arc<Model>,
    /// The chat template renders `tools` itself; otherwise [`tools::fold_into_text`] does.
    renders_tools: bool,
}

impl Drop for Loaded {
    fn drop(&mut self) {
        // May run inside async code, where a blocking runtime drop would panic.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl LocalExpert {
    /// An expert named `name` serving `entry`, loaded on first use within `residency`.
    pub fn new(name: &str, entry: ModelEntry, residency: &Arc<Residency>) -> Self {
        Self {
            name: name.to_owned(),
            slot: residency.slot(name, file_size(entry.engine_file()).unwrap_or(entry.size)),
            residency: Arc::clone(residency),
            entry,
        }
    }

    /// The loaded model; whoever holds it keeps it in memory.
    async fn engine(&self) -> Result<Arc<Loaded>, ExpertError> {
        let (path, name) = (self.entry.engine_file().to_owned(), self.name.clone());
        self.residency
            .get(&self.slot, move || load(path, name))
            .await
    }

    /// Input tokens of `body` as the model sees it: rendered by its chat template (system,
    /// messages, tools, generation prompt) and counted by its tokenizer.
    async fn count(&self, loaded: &Loaded, body: &MessagesRequest) -> Result<u64, ExpertError> {
        let engine = &loaded.engine;
        let prepared = prepare(body, engine.renders_tools)?;
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let request = Request::Tokenize(TokenizationRequest {
            text: Either::Left(prepared.messages),
            tools: prepared.tools,
            add_generation_prompt: true,
            add_special_tokens: true,
            enable_thinking: None,
            reasoning_effort: None,
            response: tx,
        });
        self.send(&engine.model, request).await?;
        match rx.recv().await {
            Some(Ok(tokens)) => Ok(tokens.len() as u64),
            Some(Err(e)) => Err(ExpertError::BadRequest(format!(
                "expert {:?}: cannot render the request with the model's chat template: {e}",
                self.name
            ))),
            None => Err(self.gone()),
        }
    }

    async fn send(&self, model: &Model, request: Request) -> Result<(), ExpertError> {
        let sender = model
            .inner()
            .get_sender(None)
            .map_err(|e| ExpertError::Upstream(format!("expert {:?}: {e}", self.name)))?;
        sender.send(request).await.map_err(|_| self.gone())
    }

    fn gone(&self) -> ExpertError {
        ExpertError::overloaded(format!("expert {:?}: the local engine stopped", self.name))
    }

    fn context_length(&self, model: &Model) -> Option<u64> {
        model
            .max_sequence_length()
            .ok()
            .flatten()
            .map(|n| n as u64)
            .or(self.entry.context_length)
    }

    async fn start(&self, request: ExpertRequest) -> Result<ExpertStream, ExpertError> {
        let loaded = self.engine().await?;
        let engine = &loaded.engine;
        let body = &request.body;
        let input = self.count(&loaded, body).await?;
        let max_tokens = body.max_tokens.unwrap_or(1024);
        if let Some(limit) = self.context_length(&engine.model) {
            // Claude Code parses exactly these two wordings.
            if input > limit {
                return Err(ExpertError::BadRequest(context::too_long(input, limit)));
            }
            if input + max_tokens > limit {
                return Err(ExpertError::BadRequest(context::exceeds(
                    input, max_tokens, limit,
                )));
            }
        }
        let prepared = prepare(body, engine.renders_tools)?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let engine_request = NormalRequest {
            messages: mistralrs::core::RequestMessage::Chat {
                messages: prepared.messages,
                enable_thinking: body.thinking.as_ref().map(|t| t.is_on()),
                reasoning_effort: None,
            },
            sampling_params: sampling(body),
            response: tx,
            return_logprobs: false,
            is_streaming: true,
            id: 0,
            constraint: prepared.constraint,
            suffix: None,
            tool_choice: prepared.tools.as_ref().map(|_| prepared.tool_choice),
            tools: prepared.tools,
            logits_processors: None,
            return_raw_logits: false,
            web_search_options: None,
            model_id: None,
            truncate_sequence: false,
        };
        self.send(&engine.model, Request::Normal(Box::new(engine_request)))
            .await?;
        let name = self.name.clone();
        let stop_sequences = body.stop_sequences.clone().unwrap_or_default();
        let mut rx = rx;
        let stream = generator(move |out| async move {
            // Keep the model loaded (and counted as in use) for as long as the stream is read.
            let _loaded = loaded;
            let mut translator = ChunkTranslator::new(name.clone(), stop_sequences, input);
            out.send(Ok(ExpertEvent::Usage(UsageUpdate {
                input_tokens: Some(input),
                ..UsageUpdate::default()
            })))
            .await;
            while let Some(response) = rx.recv().await {
                let items = match response {
                    Response::Chunk(chunk) => match serde_json::to_string(&chunk) {
                        Ok(json) => translator.chunk(&json),
                        Err(e) => vec![Err(ExpertError::Upstream(e.to_string()))],
                    },
                    Response::InternalError(e) => {
                        vec![Err(ExpertError::Upstream(format!("expert {name:?}: {e}")))]
                    }
                    Response::ValidationError(e) => {
                        vec![Err(ExpertError::BadRequest(format!(
                            "expert {name:?}: {e}"
                        )))]
                    }
                    Response::ModelError(e, _) => {
                        vec![Err(ExpertError::Upstream(format!("expert {name:?}: {e}")))]
                    }
                    _ => Vec::new(),
                };
                for item in items {
                    let failed = item.is_err();
                    if !out.send(item).await || failed {
                        return;
                    }
                }
            }
            // The engine's final usage reports the prompt it actually ran, which must equal
            // `input` (what count_tokens says); the end-to-end tests hold it to that.
            for item in translator.finish() {
                if !out.send(item).await {
                    return;
                }
            }
        });
        Ok(stream.boxed())
    }
}

async fn load(path: std::path::PathBuf, name: String) -> Result<Loaded, ExpertError> {
    let started = std::time::Instant::now();
    let template = crate::gguf::inspect(&path)
        .map_err(|e| ExpertError::Upstream(format!("expert {name:?}: {e}")))?
        .chat_template;
    let renders_tools = tools::template_renders_tools(&template);
    tracing::info!(expert = %name, path = %path.display(), "loading local model");
    let result = tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let dir = path
            .parent()
            .unwrap_or(Path::new("."))
            .to_string_lossy()
            .into_owned();
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        // mistral.rs may panic on inputs it does not expect; contain it to this request.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runtime.block_on(build_model(dir, file, activation_dtype()))
        }))
        .map_err(|_| "the engine panicked while loading the model".to_owned())?
        .map(|model| (model, runtime))
    })
    .await
    .map_err(|e| ExpertError::Upstream(format!("expert {name:?}: loading failed: {e}")))?;
    match result {
        Ok((model, runtime)) => {
            tracing::info!(expert = %name, seconds = started.elapsed().as_secs_f64(), "local model loaded");
            Ok(Loaded {
                engine: Engine {
                    model: Arc::new(model),
                    renders_tools,
                },
                runtime: Some(runtime),
            })
        }
        Err(e) => Err(ExpertError::Upstream(format!(
            "expert {name:?}: cannot load the model: {e}"
        ))),
    }
}

/// The dtype activations are computed in. mistral.rs picks BF16 on CPU, which the CPU has no
/// arithmetic for; `MOE_SOVEREIGN_LOCAL_DTYPE` (`f32`, `bf16`, `f16`, `auto`) overrides the
/// default for measurements.
fn activation_dtype() -> ModelDType {
    match std::env::var("MOE_SOVEREIGN_LOCAL_DTYPE").as_deref() {
        Ok("bf16") => ModelDType::BF16,
        Ok("f16") => ModelDType::F16,
        Ok("auto") => ModelDType::Auto,
        _ => ModelDType::F32,
    }
}

/// The engine for one GGUF file on the CPU: what `GgufModelBuilder` does, with the dtype ours.
async fn build_model(dir: String, file: String, dtype: ModelDType) -> Result<Model, String> {
    let loader = GGUFLoaderBuilder::new(
        None,
        None,
        dir,
        vec![file],
        GGUFSpecificConfig { topology: None },
        false,
        None,
    )
    .build();
    let pipeline = loader
        .load_model_from_hf(
            None,
            TokenSource::None,
            &dtype,
            &Device::Cpu,
            true,
            DeviceMapSetting::Auto(AutoDeviceMapParams::default_text()),
            None,
            None,
        )
        .map_err(|e| e.to_string())?;
    let sequences = std::num::NonZeroUsize::new(MAX_SEQUENCES).ok_or("no sequences")?;
    let scheduler = SchedulerConfig::DefaultScheduler {
        method: DefaultSchedulerMethod::Fixed(sequences),
    };
    let runner = MistralRsBuilder::new(pipeline, scheduler, false, None)
        .with_prefix_cache_n(PREFIX_CACHE_SEQUENCES)
        .build()
        .await;
    Ok(Model::new(runner))
}

/// Sequences the engine batches at once (the gateway admits 8 running requests per expert).
const MAX_SEQUENCES: usize = 32;
/// Earlier prompts whose KV cache is kept for prefix reuse.
const PREFIX_CACHE_SEQUENCES: usize = 16;

fn sampling(body: &MessagesRequest) -> SamplingParams {
    let mut params = SamplingParams::deterministic();
    params.temperature = body.temperature;
    params.top_p = body.top_p;
    params.top_k = body.top_k.map(|k| k as usize);
    if body.temperature.is_some_and(|t| t > 0.0) && body.top_k.is_none() {
        params.top_k = None;
    }
    params.max_len = Some(body.max_tokens.unwrap_or(1024) as usize);
    params.stop_toks = body
        .stop_sequences
        .clone()
        .filter(|s| !s.is_empty())
        .map(StopTokens::Seqs);
    params
}

fn file_size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// A request as the engine takes it.
struct Prepared {
    messages: Messages,
    tools: Option<Vec<Tool>>,
    tool_choice: ToolChoice,
    constraint: Constraint,
}

/// The request as engine messages: the OpenAI-shaped conversion (system folded in front, tool
/// results as `tool` messages), tool turns folded into text where the template cannot render
/// them, then each message as the engine's map of fields; a forced tool call as a constraint.
fn prepare(body: &MessagesRequest, renders_tools: bool) -> Result<Prepared, ExpertError> {
    let chat = to_chat_completion(body, "local")?;
    let tool_list: Vec<Value> = chat["tools"].as_array().cloned().unwrap_or_default();
    let choice = Choice::from_openai(&chat["tool_choice"]);
    let constraint = match tools::forced_call_schema(&tool_list, &choice) {
        Ok(Some(schema)) => Constraint::JsonSchema(schema),
        Ok(None) => Constraint::None,
        Err(e) => return Err(ExpertError::BadRequest(e)),
    };
    let mut chat_messages: Vec<Value> = chat["messages"].as_array().cloned().unwrap_or_default();
    if !renders_tools {
        tools::fold_into_text(&mut chat_messages, &tool_list, &choice);
    }
    let mut messages = Vec::new();
    for message in &chat_messages {
        let mut map: IndexMap<String, MessageContent> = IndexMap::new();
        let role = message["role"].as_str().unwrap_or("user").to_owned();
        map.insert("role".into(), Either::Left(role));
        let content = match &message["content"] {
            Value::Array(parts) if parts.iter().any(|p| p["type"] != "text") => {
                return Err(ExpertError::BadRequest(
                    "this local model reads text only: remove the image blocks or route the \
                     request to a vision-capable expert"
                        .into(),
                ));
            }
            content => tools::text_of(content),
        };
        map.insert("content".into(), Either::Left(content));
        if let Some(id) = message["tool_call_id"].as_str() {
            map.insert("tool_call_id".into(), Either::Left(id.to_owned()));
        }
        if let Some(calls) = message["tool_calls"].as_array() {
            let calls = calls
                .iter()
                .filter_map(|c| c.as_object())
                .map(|c| c.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .collect();
            map.insert("tool_calls".into(), Either::Right(calls));
        }
        messages.push(map);
    }
    let tool_list: Vec<Tool> = tool_list
        .iter()
        .map(|t| Tool {
            tp: ToolType::Function,
            function: Function {
                name: t["function"]["name"].as_str().unwrap_or("").to_owned(),
                description: t["function"]["description"].as_str().map(str::to_owned),
                parameters: t["function"]["parameters"].as_object().map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect::<HashMap<_, _>>()
                }),
            },
        })
        .collect();
    Ok(Prepared {
        messages,
        tools: (!tool_list.is_empty()).then_some(tool_list),
        // `none`: the engine does not look for calls in the output.
        tool_choice: if choice == Choice::None {
            ToolChoice::None
        } else {
            ToolChoice::Auto
        },
        constraint,
    })
}

impl Expert for LocalExpert {
    fn name(&self) -> &str {
        &self.name
    }

    fn model_label(&self) -> String {
        match &self.entry.engine_path {
            Some(_) => format!(
                "{} ({} as Q8_0, local)",
                self.entry.name, self.entry.quantization
            ),
            None => format!("{} ({}, local)", self.entry.name, self.entry.quantization),
        }
    }

    fn stream(&self, request: ExpertRequest) -> BoxFuture<'_, Result<ExpertStream, ExpertError>> {
        self.start(request).boxed()
    }

    fn count_tokens(&self, request: ExpertRequest) -> BoxFuture<'_, Result<u64, ExpertError>> {
        async move {
            let loaded = self.engine().await?;
            self.count(&loaded, &request.body).await
        }
        .boxed()
    }

    fn warm(&self) -> BoxFuture<'_, Result<(), ExpertError>> {
        Box::pin(async move { self.engine().await.map(|_| ()) })
    }
}
