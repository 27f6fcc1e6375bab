//! Upstream "context window exceeded" errors, reworded the way Claude Code parses them:
//! `prompt is too long: N tokens > M maximum` (it then compacts the conversation) and
//! ``input length and `max_tokens` exceed context limit: A + B > C`` (it then retries with a
//! smaller `max_tokens`). Servers word this differently; the numbers are what matters.

use serde_json::Value;

use crate::ExpertError;

/// Whether `error` says the request does not fit the expert's context window (in the wording
/// of [`claude_wording`], which every expert uses).
pub fn is_overflow(error: &ExpertError) -> bool {
    matches!(error, ExpertError::BadRequest(message)
        if message.starts_with("prompt is too long:")
            || message.starts_with("input length and `max_tokens` exceed context limit"))
}

/// Claude Code's wording for an upstream 400 `body`/`detail`, when it is a context overflow.
pub fn claude_wording(body: &Value, detail: &str) -> Option<String> {
    // llama.cpp server: {"error": {"type": "exceed_context_size_error", "n_prompt_tokens", "n_ctx"}}
    if let Some(error) = body.get("error")
        && let (Some(prompt), Some(context)) = (
            error.get("n_prompt_tokens").and_then(Value::as_u64),
            error.get("n_ctx").and_then(Value::as_u64),
        )
    {
        return Some(too_long(prompt, context));
    }
    let lower = detail.to_lowercase();
    // vLLM: "This model's maximum context length is 2048 tokens. However, you requested 3000
    // tokens (2900 in the messages, 100 in the completion)."
    if let Some(context) = number_after(&lower, "maximum context length is ") {
        if let (Some(input), Some(output)) = (
            number_after(&lower, "tokens ("),
            number_after(&lower, "in the messages, "),
        ) {
            return Some(exceeds(input, output, context));
        }
        // Newer vLLM: "... However, your request has 3000 input tokens."
        if let Some(input) = number_after(&lower, "request has ") {
            return Some(too_long(input, context));
        }
        if let (Some(output), Some(input)) = (
            number_after(&lower, "you requested "),
            number_after(&lower, "prompt contains at least "),
        ) {
            return Some(exceeds(input, output, context));
        }
    }
    // llama-cpp-python: "Requested tokens (3000) exceed context window of 2048"
    if let (Some(input), Some(context)) = (
        number_after(&lower, "requested tokens ("),
        number_after(&lower, "context window of "),
    ) {
        return Some(too_long(input, context));
    }
    None
}

/// `prompt is too long: N tokens > M maximum`.
pub fn too_long(prompt: u64, context: u64) -> String {
    format!("prompt is too long: {prompt} tokens > {context} maximum")
}

/// ``input length and `max_tokens` exceed context limit: A + B > C, …``.
pub fn exceeds(input: u64, output: u64, context: u64) -> String {
    format!(
        "input length and `max_tokens` exceed context limit: {input} + {output} > {context}, \
         decrease input length or `max_tokens` and try again"
    )
}

fn number_after(text: &str, marker: &str) -> Option<u64> {
    let start = text.find(marker)? + marker.len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn llama_cpp_server_numbers() {
        let body = json!({"error": {"code": 400, "message": "the request exceeds the available context size, try increasing it",
                                    "type": "exceed_context_size_error", "n_prompt_tokens": 3000, "n_ctx": 2048}});
        assert_eq!(
            claude_wording(&body, "").unwrap(),
            "prompt is too long: 3000 tokens > 2048 maximum"
        );
    }

    #[test]
    fn vllm_messages_and_completion() {
        let detail = "This model's maximum context length is 2048 tokens. However, you requested 3000 tokens (2900 in the messages, 100 in the completion). Please reduce the length of the messages or completion.";
        assert_eq!(
            claude_wording(&Value::Null, detail).unwrap(),
            "input length and `max_tokens` exceed context limit: 2900 + 100 > 2048, decrease input length or `max_tokens` and try again"
        );
        let newer = "This model's maximum context length is 4096 tokens. However, your request has 5000 input tokens. Please reduce the length of the input messages.";
        assert_eq!(
            claude_wording(&Value::Null, newer).unwrap(),
            "prompt is too long: 5000 tokens > 4096 maximum"
        );
    }

    #[test]
    fn llama_cpp_python_and_unrelated_errors() {
        assert_eq!(
            claude_wording(
                &Value::Null,
                "Requested tokens (3000) exceed context window of 2048"
            )
            .unwrap(),
            "prompt is too long: 3000 tokens > 2048 maximum"
        );
        assert!(claude_wording(&json!({"error": {"message": "bad"}}), "bad").is_none());
    }
}
