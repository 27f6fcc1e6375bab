//! `GET /v1/models` and `GET /v1/models/{id}`: one `claude-…` id per profile.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use moe_sovereign_anthropic::{ModelInfo, ModelList};
use moe_sovereign_experts::Profile;

use crate::{GatewayError, GatewayState};

/// Every profile that has an expert, newest first.
fn models(state: &GatewayState) -> Vec<ModelInfo> {
    let routes = state.routes.current();
    Profile::ALL
        .into_iter()
        .enumerate()
        .filter_map(|(age, profile)| {
            let expert = routes.expert_for(profile)?;
            Some(ModelInfo {
                kind: "model".into(),
                id: profile.model_id().into(),
                display_name: format!("{} · {}", profile.title(), expert.model_label()),
                // Fixed dates keep the list in profile order under "newest first".
                created_at: format!("2026-01-{:02}T00:00:00Z", 3 - age),
            })
        })
        .collect()
}

/// `GET /v1/models?limit=&after_id=&before_id=`.
pub async fn list(
    State(state): State<GatewayState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<ModelList>, GatewayError> {
    let Query(query) = query.map_err(|e| GatewayError::InvalidRequest(e.body_text()))?;
    let limit = match query.get("limit") {
        None => 20,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                GatewayError::InvalidRequest("limit: must be an integer from 1 to 1000".into())
            })?,
    };
    let all = models(&state);
    let position = |field: &str| -> Result<Option<usize>, GatewayError> {
        query
            .get(field)
            .map(|id| {
                all.iter().position(|m| &m.id == id).ok_or_else(|| {
                    GatewayError::InvalidRequest(format!("{field}: no model with id {id:?}"))
                })
            })
            .transpose()
    };
    let (page, has_more): (Vec<ModelInfo>, bool) =
        match (position("after_id")?, position("before_id")?) {
            (Some(_), Some(_)) => {
                return Err(GatewayError::InvalidRequest(
                    "after_id and before_id cannot be combined".into(),
                ));
            }
            (Some(after), None) => {
                let rest = &all[after + 1..];
                (
                    rest.iter().take(limit).cloned().collect(),
                    rest.len() > limit,
                )
            }
            (None, Some(before)) => {
                let start = before.saturating_sub(limit);
                (all[start..before].to_vec(), start > 0)
            }
            (None, None) => (all.iter().take(limit).cloned().collect(), all.len() > limit),
        };
    Ok(Json(ModelList {
        first_id: page.first().map(|m| m.id.clone()),
        last_id: page.last().map(|m| m.id.clone()),
        has_more,
        data: page,
    }))
}

/// `GET /v1/models/{id}`.
pub async fn retrieve(
    State(state): State<GatewayState>,
    Path(id): Path<String>,
) -> Result<Json<ModelInfo>, GatewayError> {
    models(&state)
        .into_iter()
        .find(|m| m.id == id)
        .map(Json)
        .ok_or_else(|| GatewayError::NotFound(format!("model {id:?} not found")))
}
