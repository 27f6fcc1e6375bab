//! Anthropic Messages API wire types, exactly as clients send and expect them, and the SSE
//! encoding of stream events. Serde only: no IO, no policy.
//!
//! Layout:
//! - [`request`]: `POST /v1/messages` and `count_tokens` bodies (unknown fields are kept, so a
//!   request can be forwarded to another Anthropic-compatible server unchanged);
//! - [`response`]: the non-streaming `Message`, `Usage`, models list, token count;
//! - [`stream`]: stream events and their `event: X\ndata: {…}\n\n` encoding;
//! - [`error`]: the error envelope and its `type`s.

pub mod error;
pub mod request;
pub mod response;
pub mod stream;

pub use error::{ErrorBody, ErrorResponse, ErrorType};
pub use request::{
    ContentBlock, ImageSource, InputMessage, MessageContent, MessagesRequest, Role, System,
    Thinking, Tool, ToolChoice, ToolResultContent,
};
pub use response::{CountTokensResponse, Message, ModelInfo, ModelList, StopReason, Usage};
pub use stream::{Delta, MessageDelta, StreamEvent};
