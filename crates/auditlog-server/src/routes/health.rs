//! Liveness and readiness for orchestrators.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

/// The process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The process can serve: the database answers and the writer runs.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store.ping().await?;
    if !state.writer.is_running() {
        return Err(ApiError::Unavailable("the writer has stopped".into()));
    }
    Ok(Json(json!({"status": "ready"})))
}
