//! Every failure the edge reports, mapped to an HTTP status and the Anthropic envelope.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use moe_sovereign_anthropic::{ErrorBody, ErrorResponse, ErrorType};
use moe_sovereign_experts::ExpertError;

/// What went wrong, from the client's point of view.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    /// Bad JSON, a missing field, a bad value (400).
    #[error("{0}")]
    InvalidRequest(String),
    /// Missing or unknown key (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// Refused Host or Origin (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such route or object (404).
    #[error("{0}")]
    NotFound(String),
    /// Wrong method for a route (405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// Body over the limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// The expert failed.
    #[error(transparent)]
    Expert(#[from] ExpertError),
    /// A bug (500).
    #[error("{0}")]
    Internal(String),
}

impl GatewayError {
    /// Status, error type and `retry-after` seconds.
    pub fn classify(&self) -> (StatusCode, ErrorType, Option<u64>) {
        use ErrorType as T;
        let (kind, retry) = match self {
            Self::InvalidRequest(_) | Self::MethodNotAllowed(_) => (T::InvalidRequestError, None),
            Self::Unauthenticated(_) => (T::AuthenticationError, None),
            Self::Forbidden(_) => (T::PermissionError, None),
            Self::NotFound(_) => (T::NotFoundError, None),
            Self::TooLarge(_) => (T::RequestTooLarge, None),
            Self::Internal(_) => (T::ApiError, None),
            Self::Expert(error) => match error {
                ExpertError::BadRequest(_) => (T::InvalidRequestError, None),
                ExpertError::TooLarge(_) => (T::RequestTooLarge, None),
                ExpertError::UpstreamAuth(_) | ExpertError::Upstream(_) => (T::ApiError, None),
                ExpertError::RateLimited { retry_after, .. } => (T::RateLimitError, *retry_after),
                ExpertError::Overloaded { retry_after, .. } => {
                    (T::OverloadedError, Some(retry_after.unwrap_or(1)))
                }
            },
        };
        let status = match self {
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            _ => StatusCode::from_u16(kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        };
        (status, kind, retry)
    }

    /// The `error` object of the envelope (also the payload of an SSE `error` event).
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            kind: self.classify().1,
            message: self.to_string(),
        }
    }
}

/// Marks an error response so the edge middleware can log it once.
#[derive(Debug, Clone)]
pub struct LoggedError(pub String);

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let (status, kind, retry_after) = self.classify();
        let envelope = ErrorResponse::new(kind, self.to_string());
        let mut response = (status, axum::Json(envelope)).into_response();
        if let Some(seconds) = retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert("retry-after", value);
        }
        response
            .extensions_mut()
            .insert(LoggedError(self.to_string()));
        response
    }
}
