//! `GET /v1/audit/catalog`: the event catalog, public (it holds no data).

use auditlog_domain::catalog::EventSpec;
use axum::Json;
use axum::extract::State;

use crate::http::state::AppState;

// The shape of `Catalog::to_json`, which builds the answer; described here
// because the domain knows nothing of HTTP.

/// The event catalog, by category.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct CatalogBody {
    categories: Vec<CatalogCategory>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct CatalogCategory {
    /// The first segment of its events' names, so `api_key.*` selects it.
    #[schema(examples("api_key"))]
    name: String,
    #[schema(examples("API keys"))]
    label: String,
    events: Vec<EventSpec>,
}

/// The event catalog: every event the log accepts, by category, with the
/// detail keys each must carry.
#[utoipa::path(
    get,
    path = "/v1/audit/catalog",
    operation_id = "get_catalog",
    tag = "catalog",
    responses(
        (status = 200, description = "The catalog.", body = CatalogBody),
    )
)]
pub async fn get_catalog(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.catalog.to_json())
}
