//! Liveness and readiness for orchestrators, and metrics for the scraper.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

/// Prometheus metrics (see [`crate::metrics`]), in the text format.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.config.metrics.render(),
    )
}

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
