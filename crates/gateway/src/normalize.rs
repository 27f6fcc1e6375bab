//! What the gateway changes before an expert sees a request, and what it refuses.

use moe_sovereign_anthropic::{ContentBlock, MessagesRequest, System};

use crate::GatewayError;

/// Claude Code's per-request attribution block starts with this. It changes on every request
/// and would defeat every prefix cache, so it never reaches an expert.
pub const BILLING_PREFIX: &str = "x-anthropic-billing-header:";

/// Parses a body, with serde's message (line and column included) on failure.
pub fn parse(body: &[u8]) -> Result<MessagesRequest, GatewayError> {
    serde_json::from_slice(body)
        .map_err(|e| GatewayError::InvalidRequest(format!("invalid request body: {e}")))
}

/// Checks a `/v1/messages` body and removes the billing block.
pub fn for_messages(mut request: MessagesRequest) -> Result<MessagesRequest, GatewayError> {
    match request.max_tokens {
        None => {
            return Err(GatewayError::InvalidRequest(
                "max_tokens: Field required".into(),
            ));
        }
        Some(0) => {
            return Err(GatewayError::InvalidRequest(
                "max_tokens: must be at least 1".into(),
            ));
        }
        Some(_) => {}
    }
    common(&mut request)?;
    Ok(request)
}

/// Checks a `count_tokens` body and removes the billing block.
pub fn for_count(mut request: MessagesRequest) -> Result<MessagesRequest, GatewayError> {
    common(&mut request)?;
    Ok(request)
}

fn common(request: &mut MessagesRequest) -> Result<(), GatewayError> {
    if request.messages.is_empty() {
        return Err(GatewayError::InvalidRequest(
            "messages: at least one message is required".into(),
        ));
    }
    if let Some(t) = request.temperature
        && !(0.0..=2.0).contains(&t)
    {
        return Err(GatewayError::InvalidRequest(
            "temperature: must be between 0 and 2".into(),
        ));
    }
    if let Some(p) = request.top_p
        && !(0.0..=1.0).contains(&p)
    {
        return Err(GatewayError::InvalidRequest(
            "top_p: must be between 0 and 1".into(),
        ));
    }
    strip_billing_block(request);
    Ok(())
}

fn strip_billing_block(request: &mut MessagesRequest) {
    match &mut request.system {
        Some(System::Blocks(blocks)) => {
            blocks.retain(|block| {
                !matches!(block, ContentBlock::Text { text, .. } if text.trim_start().starts_with(BILLING_PREFIX))
            });
            if blocks.is_empty() {
                request.system = None;
            }
        }
        Some(System::Text(text)) if text.trim_start().starts_with(BILLING_PREFIX) => {
            let rest = text
                .trim_start()
                .split_once('\n')
                .map_or("", |(_, rest)| rest)
                .to_owned();
            request.system = (!rest.is_empty()).then_some(System::Text(rest));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn billing_block_is_removed_and_the_rest_kept() {
        let request = parse(
            json!({
                "model": "claude-opus-4-8", "max_tokens": 10,
                "messages": [{"role": "user", "content": "hi"}],
                "system": [
                    {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.495; cch=abc;"},
                    {"type": "text", "text": "You are a Claude agent", "cache_control": {"type": "ephemeral"}}
                ]
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let request = for_messages(request).unwrap();
        assert_eq!(
            serde_json::to_value(request.system).unwrap(),
            json!([{"type": "text", "text": "You are a Claude agent", "cache_control": {"type": "ephemeral"}}])
        );
    }

    #[test]
    fn missing_max_tokens_and_empty_messages_are_refused() {
        let no_max = parse(br#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#).unwrap();
        assert!(for_messages(no_max.clone()).is_err());
        assert!(for_count(no_max).is_ok());
        let empty = parse(br#"{"model":"m","max_tokens":1,"messages":[]}"#).unwrap();
        assert!(for_messages(empty).is_err());
    }

    #[test]
    fn bad_json_names_line_and_column() {
        let GatewayError::InvalidRequest(message) = parse(b"{\n  \"model\": }").unwrap_err() else {
            panic!()
        };
        assert!(message.contains("line 2"), "{message}");
    }
}
