//! `GET /v1/audit/catalog`: the event catalog, public (it holds no data).

use axum::Json;
use axum::extract::State;

use crate::AppState;

pub async fn get_catalog(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.catalog.to_json())
}
