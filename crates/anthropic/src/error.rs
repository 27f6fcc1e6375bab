//! The error envelope: `{"type":"error","error":{"type":…,"message":…},"request_id":…}`.

use serde::{Deserialize, Serialize};

/// Anthropic's `error.type` values, each with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    /// 400 (and other 4xx without a type of their own).
    InvalidRequestError,
    /// 401.
    AuthenticationError,
    /// 403.
    PermissionError,
    /// 404.
    NotFoundError,
    /// 413.
    RequestTooLarge,
    /// 429.
    RateLimitError,
    /// 500.
    ApiError,
    /// 529.
    OverloadedError,
}

impl ErrorType {
    /// The HTTP status this type travels with.
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidRequestError => 400,
            Self::AuthenticationError => 401,
            Self::PermissionError => 403,
            Self::NotFoundError => 404,
            Self::RequestTooLarge => 413,
            Self::RateLimitError => 429,
            Self::ApiError => 500,
            Self::OverloadedError => 529,
        }
    }

    /// The type that goes with an HTTP status (for upstream errors without a body we understand).
    pub fn from_status(status: u16) -> Self {
        match status {
            401 => Self::AuthenticationError,
            403 => Self::PermissionError,
            404 => Self::NotFoundError,
            413 => Self::RequestTooLarge,
            429 => Self::RateLimitError,
            529 | 503 => Self::OverloadedError,
            400..=499 => Self::InvalidRequestError,
            _ => Self::ApiError,
        }
    }
}

/// `error` inside the envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error type.
    #[serde(rename = "type")]
    pub kind: ErrorType,
    /// A human-readable message; Claude Code shows it to the user.
    pub message: String,
}

/// The whole error envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// Always `"error"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The error itself.
    pub error: ErrorBody,
    /// The `request-id` of the response, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ErrorResponse {
    /// An envelope for `kind` with `message`.
    pub fn new(kind: ErrorType, message: impl Into<String>) -> Self {
        Self {
            kind: "error".into(),
            error: ErrorBody {
                kind,
                message: message.into(),
            },
            request_id: None,
        }
    }
}
