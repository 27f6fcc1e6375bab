//! The bodies of the fuzz targets: each takes arbitrary bytes, runs them through the real code,
//! and panics only on a bug — a panic in the code under test, or a broken property checked
//! here (an error that is not an Anthropic envelope, a wire → unwire that does not give the
//! file back, a GGUF layout that would make the converter slice out of bounds, …).
//!
//! The libFuzzer binaries (`fuzz/fuzz_targets/*.rs`, their own cargo workspace, built and run
//! by `scripts/fuzz.sh`) are one call each into this crate; `tests/replay.rs` runs every seed
//! (`fuzz/corpus/<target>/`) and every crash found so far (`fuzz/regressions/<target>/`)
//! through the same functions as a plain `cargo test`, without a fuzz build.

use std::path::Path;
use std::sync::OnceLock;

use moe_sovereign_anthropic::{ContentBlock, ErrorResponse, MessagesRequest, StreamEvent, System};
use moe_sovereign_experts::openai::{ChunkTranslator, to_chat_completion};
use moe_sovereign_experts::signature::Signer;
use moe_sovereign_experts::sse::{SseEvent, SseParser};
use moe_sovereign_experts::{ExpertEvent, estimate_tokens};
use moe_sovereign_gateway::GatewayError;
use moe_sovereign_gateway::collect::Collector;
use moe_sovereign_gateway::normalize::{self, BILLING_PREFIX};
use moe_sovereign_gateway::sse::{Encoder, error_event};
use moe_sovereign_wiring::json::Document;
use moe_sovereign_wiring::plan::{self, Change, FilePlan};
use moe_sovereign_wiring::{Env, Params, Platform, WiringError};
use serde_json::{Value, json};

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target, by the name of its binary and of its folders under `fuzz/corpus/` and
/// `fuzz/regressions/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("request", request),
    ("sse", sse),
    ("openai_chunk", openai_chunk),
    ("wiring", wiring),
    ("gguf", gguf),
];

// ---------------------------------------------------------------------------------------------
// request

/// A `/v1/messages` or `count_tokens` body, as the handlers take it: parse, then normalise for
/// either route. A refusal must be a 400 with an Anthropic error envelope; an accepted request
/// must be forwardable to both kinds of remote expert (serialised for an Anthropic upstream,
/// converted for an OpenAI one) and parse again as a request.
pub fn request(data: &[u8]) {
    let request = match normalize::parse(data) {
        Ok(request) => request,
        Err(error) => return refused(&error),
    };
    match normalize::for_count(request.clone()) {
        Ok(request) => {
            estimate_tokens(&request);
        }
        Err(error) => refused(&error),
    }
    match normalize::for_messages(request) {
        Ok(request) => forwarded(&request),
        Err(error) => refused(&error),
    }
}

/// A refused body: 400, `invalid_request_error`, an envelope that serialises.
fn refused(error: &GatewayError) {
    let (status, kind, retry_after) = error.classify();
    assert_eq!(status.as_u16(), 400, "a bad body is not a 400: {error:?}");
    assert!(
        retry_after.is_none(),
        "a bad body asks for a retry: {error:?}"
    );
    let message = error.to_string();
    assert!(!message.is_empty(), "an empty error message: {error:?}");
    envelope(&ErrorResponse::new(kind, message));
}

fn envelope(response: &ErrorResponse) {
    let bytes = match serde_json::to_vec(response) {
        Ok(bytes) => bytes,
        Err(e) => panic!("the error envelope does not serialise: {e}"),
    };
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(e) => panic!("the error envelope is not JSON: {e}"),
    };
    assert_eq!(value["type"], "error");
    assert!(value["error"]["type"].is_string() && value["error"]["message"].is_string());
}

/// An accepted request, on its way to an expert.
fn forwarded(request: &MessagesRequest) {
    assert!(request.max_tokens.is_some_and(|n| n > 0));
    assert!(!request.messages.is_empty());
    if let Some(System::Blocks(blocks)) = &request.system {
        assert!(
            !blocks
                .iter()
                .any(|block| matches!(block, ContentBlock::Text { text, .. }
                if text.trim_start().starts_with(BILLING_PREFIX))),
            "a billing block survived normalisation"
        );
    }
    estimate_tokens(request);
    // What the Anthropic expert sends: the request serialised, which must read back.
    let body = match serde_json::to_vec(request) {
        Ok(body) => body,
        Err(e) => panic!("an accepted request does not serialise: {e}"),
    };
    if let Err(e) = normalize::parse(&body) {
        panic!(
            "an accepted request, serialised, no longer parses: {e}\n{}",
            String::from_utf8_lossy(&body)
        );
    }
    // What the OpenAI expert sends; a request it cannot convert is the client's error (4xx).
    match to_chat_completion(request, "fuzz-model") {
        Ok(body) => {
            if let Err(e) = serde_json::to_vec(&body) {
                panic!("a chat completion body does not serialise: {e}");
            }
        }
        Err(error) => {
            let error = GatewayError::from(error);
            let (status, _, _) = error.classify();
            assert!(
                status.is_client_error(),
                "an unconvertible request is not a 4xx: {error:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// sse

/// An upstream body through the SSE parser: whole, in chunks cut where the first byte says,
/// and a byte at a time — the same events each way. Events that are Anthropic stream events
/// (what the Anthropic expert reads) survive our own SSE encoding and parse again.
pub fn sse(data: &[u8]) {
    let Some((&seed, body)) = data.split_first() else {
        return;
    };
    let whole = parse_sse([body].into_iter());
    let chunked = parse_sse(chunks(body, seed));
    assert_eq!(whole, chunked, "chunk boundaries changed the events");
    let bytewise = parse_sse(body.chunks(1));
    assert_eq!(whole, bytewise, "a byte at a time changed the events");
    for event in &whole {
        assert!(
            event
                .event
                .as_deref()
                .is_none_or(|e| !e.contains(['\r', '\n']))
        );
        if let Ok(parsed) = serde_json::from_str::<StreamEvent>(&event.data) {
            reencode(&parsed);
        }
    }
}

/// Every event `chunks` yields, then the unterminated last one.
fn parse_sse<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> Vec<SseEvent> {
    let mut parser = SseParser::default();
    let mut events = Vec::new();
    for chunk in chunks {
        events.extend(parser.push(chunk));
    }
    events.extend(parser.finish());
    events
}

/// `body` cut into pieces of 1 to 16 bytes, lengths drawn from `seed` (xorshift).
fn chunks(body: &[u8], seed: u8) -> impl Iterator<Item = &[u8]> {
    let mut state = u32::from(seed) | 0x9e37_7900;
    let mut rest = body;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state as usize % 16 + 1).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    })
}

/// A stream event encoded by us reads back, as exactly one SSE event of the same name.
fn reencode(event: &StreamEvent) {
    let bytes = event.to_sse();
    let events = parse_sse([bytes.as_ref()].into_iter());
    assert_eq!(
        events.len(),
        1,
        "{event:?} encodes as {} SSE events",
        events.len()
    );
    assert_eq!(events[0].event.as_deref(), Some(event.name()));
    if let Err(e) = serde_json::from_str::<StreamEvent>(&events[0].data) {
        panic!("{event:?} does not read back: {e}: {}", events[0].data);
    }
}

// ---------------------------------------------------------------------------------------------
// openai_chunk

/// A chat-completion stream through the OpenAI expert's chunk translator and on through the
/// gateway's encoder, as `OpenAiExpert` and the `/v1/messages` handler chain them.
///
/// The first byte: bit 0 asks for visible thinking, bit 1 gives the request a stop sequence
/// (`"END"`). The rest is one `data:` payload per line: a line starting with `{` is sent as it
/// is; any other line is made into a chunk by its first byte (content, reasoning, a tool
/// call's name, id or arguments, a finish reason, usage) with the rest as the value, so text
/// like `<think>` splits and tool calls are reached without valid JSON from the fuzzer.
///
/// Whatever the upstream sends, the client gets a well-formed event sequence (blocks opened in
/// order, deltas only into the open block, nothing after `message_stop` or `error`) that our
/// SSE encoding carries intact.
pub fn openai_chunk(data: &[u8]) {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let stops = if flags & 2 != 0 {
        vec!["END".to_owned()]
    } else {
        Vec::new()
    };
    let mut translator = ChunkTranslator::new("fuzz".into(), stops, 7);
    let mut items = Vec::new();
    let mut failed = false;
    for line in body.split(|&b| b == b'\n') {
        let payload = chunk_payload(line);
        // `OpenAiExpert::start`: `[DONE]` ends the stream; the first error ends it too.
        if payload.trim() == "[DONE]" {
            break;
        }
        let out = translator.chunk(&payload);
        failed = out.iter().any(Result::is_err);
        items.extend(out);
        if failed {
            break;
        }
    }
    if !failed {
        items.extend(translator.finish());
    }
    let events = encode(items, flags & 1 != 0);
    check_sequence(&events);
    let mut collector = Collector::default();
    for event in &events {
        reencode(event);
        if collector.apply(event.clone()).is_err() {
            break;
        }
    }
}

fn chunk_payload(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let Some((&kind, rest)) = line.split_first() else {
        return text.into_owned();
    };
    if kind == b'{' || text.trim() == "[DONE]" {
        return text.into_owned();
    }
    let value = String::from_utf8_lossy(rest).into_owned();
    let index = u64::from(kind >> 4);
    let delta = match kind % 8 {
        0 => json!({"content": value}),
        1 => json!({"reasoning_content": value}),
        2 => json!({"tool_calls": [{"index": index, "function": {"name": value}}]}),
        3 => json!({"tool_calls": [{"index": index, "id": value}]}),
        4 => json!({"tool_calls": [{"index": index, "function": {"arguments": value}}]}),
        5 => {
            return json!({"choices": [{"delta": {}, "finish_reason": value, "stop_reason": value}]})
                .to_string();
        }
        6 => {
            return json!({"choices": [], "usage": {"prompt_tokens": index, "completion_tokens": rest.len()}})
                .to_string();
        }
        _ => json!({"reasoning": value}),
    };
    json!({"choices": [{"index": 0, "delta": delta}]}).to_string()
}

/// Expert events (an error ends them) through the gateway's encoder: `message_start`, the
/// events, an `error` event for a failure.
fn encode(
    items: Vec<Result<ExpertEvent, moe_sovereign_experts::ExpertError>>,
    show_thinking: bool,
) -> Vec<StreamEvent> {
    let mut encoder = Encoder::new(
        "msg_fuzz".into(),
        "fuzz-model".into(),
        show_thinking,
        Signer::new([7; 32]),
    );
    let mut events = vec![encoder.start()];
    for item in items {
        match item {
            Ok(event) => encoder.event(event, &mut events),
            Err(error) => {
                let error = GatewayError::from(error);
                events.push(error_event(&error));
                break;
            }
        }
    }
    events
}

/// The order clients rely on.
fn check_sequence(events: &[StreamEvent]) {
    let mut next_index = 0;
    let mut open: Option<usize> = None;
    let mut ended = false;
    for (n, event) in events.iter().enumerate() {
        assert!(!ended, "event {n} after the end: {events:#?}");
        match event {
            StreamEvent::MessageStart { .. } => assert_eq!(n, 0, "{events:#?}"),
            StreamEvent::ContentBlockStart { index, .. } => {
                assert!(
                    open.is_none(),
                    "block {index} opened inside another: {events:#?}"
                );
                assert_eq!(*index, next_index, "{events:#?}");
                next_index += 1;
                open = Some(*index);
            }
            StreamEvent::ContentBlockDelta { index, .. } => {
                assert_eq!(open, Some(*index), "a delta outside its block: {events:#?}");
            }
            StreamEvent::ContentBlockStop { index } => {
                assert_eq!(
                    open,
                    Some(*index),
                    "a stop of a block not open: {events:#?}"
                );
                open = None;
            }
            StreamEvent::MessageDelta { .. } => {
                assert!(open.is_none(), "message_delta inside a block: {events:#?}");
            }
            StreamEvent::MessageStop | StreamEvent::Error { .. } => ended = true,
            StreamEvent::Ping => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// wiring

/// What `wire` and `unwire` do to one file's text, for every file plan of both targets on the
/// layouts whose changes differ (Linux, Windows, WSL): the strict reader, then each plan's
/// edits (twice, as wiring again does), then their undoing. Text that parses as an object
/// must come back byte for byte (a `deploymentMode` the file did not have comes back as `"1p"`,
/// by design); the wired text must parse and read as wired; a refusal is a syntax or shape
/// error with a position in the text.
pub fn wiring(data: &[u8]) {
    // `file::read`: text that is not UTF-8 is refused before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let original = match Document::parse(text) {
        Ok(doc) => doc,
        Err(error) => {
            let lines = text.split('\n').count();
            assert!(
                error.line >= 1 && error.line <= lines && error.column >= 1,
                "a syntax error outside the text: {error}"
            );
            assert!(!error.message.is_empty() && !error.message.contains('\n'));
            return;
        }
    };
    let file = Path::new("settings.json");
    for changes in wiring_plans() {
        let mut doc = original.clone();
        // `FileState` is the wiring crate's record of what was there; only inferred here.
        let mut record = Default::default();
        if let Err(error) = plan::apply(&mut doc, changes, &mut record, file) {
            assert!(matches!(error, WiringError::Shape { .. }), "{error}");
            continue;
        }
        if let Err(error) = Document::parse(doc.text()) {
            panic!("wired text does not parse: {error}\n{}", doc.text());
        }
        assert!(
            plan::applied(&doc, changes),
            "not wired after wiring:\n{}",
            doc.text()
        );
        let wired = doc.text().to_owned();
        if let Err(error) = plan::apply(&mut doc, changes, &mut record, file) {
            panic!("wiring again failed: {error}\n{wired}");
        }
        if let Err(error) = plan::revert(&mut doc, &record, file) {
            panic!("unwiring failed: {error}\n{wired}");
        }
        // What unwiring must give back: the original, plus `"deploymentMode": "1p"` (inserted
        // as wiring inserts a member) where the file had none.
        let mut expected = original.clone();
        let sets_mode = changes.iter().any(|c| {
            matches!(c, Change::Set { path, when_absent: Some(_), .. } if path == &["deploymentMode"])
        });
        if sets_mode && original.node(&["deploymentMode"]).is_none() {
            assert!(expected.set(&["deploymentMode"], &json!("1p")).is_ok());
        }
        if has_our_entry(&original) {
            // An entry with our profile's id is ours: unwiring removes it.
            continue;
        }
        assert!(
            doc.text() == expected.text(),
            "wire → unwire changed the file:\n--- before\n{}\n--- wired\n{wired}\n--- after\n{}\n--- expected\n{}",
            original.text(),
            doc.text(),
            expected.text()
        );
    }
}

/// Whether `_meta.json`'s `entries` already holds an entry with our profile's id.
fn has_our_entry(doc: &Document) -> bool {
    let Some(moe_sovereign_wiring::json::Node {
        kind: moe_sovereign_wiring::json::Kind::Array(items),
        ..
    }) = doc.node(&["entries"])
    else {
        return false;
    };
    items.iter().any(|item| {
        serde_json::from_str::<Value>(&doc.text()[item.span.clone()])
            .is_ok_and(|v| v.get("id") == Some(&json!(plan::DESKTOP_PROFILE_ID)))
    })
}

/// The distinct change lists of every file of both targets on Linux, Windows and WSL.
fn wiring_plans() -> &'static [Vec<Change>] {
    static PLANS: OnceLock<Vec<Vec<Change>>> = OnceLock::new();
    PLANS.get_or_init(|| {
        let root = Path::new("/nonexistent/moe-sovereign-fuzz");
        let params = Params {
            url: "http://127.0.0.1:8742".into(),
            key_id: "key_0011aabb".into(),
            key: "moe-sk-fuzz-secret".into(),
            helper: root.join("moe-home/bin/credential-helper"),
        };
        let env = Env {
            home: Some(root.join("home/me")),
            userprofile: Some(root.join("mnt/c/Users/Me")),
            appdata: Some(root.join("AppData/Roaming")),
            localappdata: Some(root.join("AppData/Local")),
            ..Env::default()
        };
        let mut plans: Vec<Vec<Change>> = Vec::new();
        for platform in [Platform::Linux, Platform::Windows, Platform::Wsl] {
            for target in moe_sovereign_wiring::Target::ALL {
                let files: Vec<FilePlan> = match plan::plan(target, platform, &env, &params) {
                    Ok(files) => files,
                    Err(e) => panic!("no plan for {target} on {platform:?}: {e}"),
                };
                for file in files {
                    let text = format!("{:?}", file.changes);
                    if !plans.iter().any(|p| format!("{p:?}") == text) {
                        plans.push(file.changes);
                    }
                }
            }
        }
        plans
    })
}

// ---------------------------------------------------------------------------------------------
// gguf

/// A model file's bytes through the header validator. A refusal is one non-empty line; an
/// accepted header has a layout the Q8_0 converter can use without slicing out of bounds or
/// overflowing (the file type field inside the metadata, tensor data inside the file).
pub fn gguf(data: &[u8]) {
    let info = match moe_sovereign_gguf::inspect_bytes(data) {
        Ok(info) => info,
        Err(error) => {
            assert!(
                !error.0.is_empty() && !error.0.contains(['\n', '\r']),
                "not a one-line error: {:?}",
                error.0
            );
            return;
        }
    };
    let size = data.len() as u64;
    let layout = &info.layout;
    assert_eq!(info.size, size);
    assert!(layout.alignment >= 1);
    assert!(layout.metadata_end <= layout.data_start && layout.data_start <= size);
    if let Some(at) = layout.file_type_at {
        assert!(
            at + 4 <= layout.metadata_end,
            "file type at {at} past the metadata"
        );
    }
    for tensor in &layout.tensors {
        assert!(tensor.dims.len() <= 8);
        // What `convert::to_q8_0` computes for each tensor.
        let converts = matches!(tensor.kind, 3 | 6 | 7) && tensor.elements() % 32 == 0;
        let bytes = tensor.bytes_as(tensor.kind);
        assert!(
            bytes.is_some(),
            "an accepted tensor of an unknown type: {tensor:?}"
        );
        if converts {
            assert!(tensor.bytes_as(8).is_some());
        }
        let bytes = bytes.unwrap_or_default();
        let end = layout
            .data_start
            .checked_add(tensor.offset)
            .and_then(|start| start.checked_add(bytes));
        assert!(
            end.is_some_and(|end| end <= size),
            "tensor {:?} ends past the file ({size} bytes)",
            tensor.name
        );
    }
}
