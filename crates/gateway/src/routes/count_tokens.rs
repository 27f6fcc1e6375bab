//! `POST /v1/messages/count_tokens`.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::{Extension, Json};
use moe_sovereign_anthropic::CountTokensResponse;

use crate::routes::{expert_request, no_expert, read_body};
use crate::{Caller, GatewayError, GatewayState, normalize};

/// Counts input tokens with the routed expert.
pub async fn count(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<CountTokensResponse>, GatewayError> {
    let bytes = read_body(body, state.settings.max_body_bytes).await?;
    let request = normalize::for_count(normalize::parse(&bytes)?)?;
    let route = state
        .routes
        .current()
        .resolve(caller.profile, &request.model)
        .ok_or_else(no_expert)?;
    let input_tokens = route
        .expert
        .count_tokens(expert_request(request, &headers, &caller.key_id, None))
        .await?;
    Ok(Json(CountTokensResponse { input_tokens }))
}
