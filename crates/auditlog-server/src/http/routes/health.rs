//! Liveness and readiness for orchestrators, and metrics for the scraper.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;

use crate::http::error::ApiError;
use crate::http::state::AppState;

/// The OpenMetrics text format, which Prometheus prefers.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Serialize, utoipa::ToSchema)]
pub struct Status {
    #[schema(examples("ok"))]
    status: &'static str,
}

/// Prometheus metrics (what `crate::metrics` counts), in the OpenMetrics
/// text format.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses(
    (status = 200, description = "The metrics in the OpenMetrics text format.", body = String,
        content_type = "application/openmetrics-text"),
))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, OPENMETRICS)],
        state.config.runtime.metrics.render(),
    )
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses(
    (status = 200, description = "The process is up.", body = Status),
))]
pub async fn healthz() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// The process can serve: the database answers and the writer runs.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "The database answers and the writer runs.", body = Status,
            example = json!({"status": "ready"})),
        (status = 500, response = crate::http::responses::Internal),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Status>, ApiError> {
    state.store.ping().await?;
    if !state.writer.is_running() {
        return Err(ApiError::Unavailable("the writer has stopped".into()));
    }
    Ok(Json(Status { status: "ready" }))
}
