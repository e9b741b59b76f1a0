//! Tamper evidence over HTTP: `GET …/audit/checkpoint`, `…/proofs/inclusion`,
//! `…/proofs/consistency` and the service's public key at
//! `GET /v1/audit/signing-key`.
//!
//! Proofs are assembled from stored tree nodes (O(log n) reads, no
//! rehashing) and are checkable with any RFC 9162 verifier; hashes are
//! standard base64, as in the signed checkpoints.

use auditlog_domain::Timestamp;
use auditlog_domain::merkle::{self, Hash};
use auditlog_domain::permissions::Action;
use auditlog_domain::read_audit::{Read, ReadKind};
use auditlog_domain::store::StoredCheckpoint;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use crate::http::auth::Principal;
use crate::http::error::ApiError;
use crate::http::query_string::QueryPairs;
use crate::http::reads;
use crate::http::state::AppState;
use crate::workers::checkpointer::TreeView;

pub fn b64(hash: &Hash) -> String {
    STANDARD.encode(hash)
}

/// Reads the named whole-number parameters; refuses any other.
fn numbers<const N: usize>(pairs: &[(String, String)], names: [&str; N]) -> Result<[Option<u64>; N], ApiError> {
    let mut out = [None; N];
    for (k, v) in pairs {
        let Some(i) = names.iter().position(|n| n == k) else {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("unknown parameter {k:?}; expected {}", names.join(", ")),
            ));
        };
        out[i] =
            Some(v.parse::<u64>().map_err(|_| {
                ApiError::bad_request("invalid_query", format!("{k} must be a whole number, 0 or more"))
            })?);
    }
    Ok(out)
}

/// A signed checkpoint: the size and root hash of the organization's tree.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Checkpoint {
    /// The signed note's origin line: the service's key name and the
    /// organization.
    origin: String,
    tree_size: u64,
    /// Base64.
    root_hash: String,
    signed_at: Timestamp,
    /// The checkpoint as a signed note (C2SP signed-note), exactly as signed.
    note: String,
    /// The key that signs checkpoints, as a signed-note verifier key.
    verifier_key: String,
}

fn checkpoint_body(state: &AppState, cp: StoredCheckpoint, origin: &str) -> Checkpoint {
    Checkpoint {
        origin: origin.to_owned(),
        tree_size: cp.size,
        root_hash: b64(&cp.root),
        signed_at: cp.signed_at,
        note: cp.note,
        verifier_key: state.checkpoints.key().verifier_key().to_string(),
    }
}

/// An RFC 9162 inclusion proof of one entry.
#[derive(Serialize, utoipa::ToSchema)]
pub struct InclusionProof {
    seq: u64,
    /// `seq - 1`.
    leaf_index: u64,
    tree_size: u64,
    /// Base64.
    leaf_hash: String,
    /// Base64.
    root_hash: String,
    /// The audit path, bottom up, each base64.
    proof: Vec<String>,
}

/// An RFC 9162 consistency proof between two tree sizes.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ConsistencyProof {
    from: u64,
    to: u64,
    /// Base64.
    from_root: String,
    /// Base64.
    to_root: String,
    /// Each base64.
    proof: Vec<String>,
}

/// The key that signs every checkpoint.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SigningKey {
    name: String,
    /// As a signed-note verifier key (`auditlog verify --key`).
    verifier_key: String,
    /// The raw Ed25519 public key, base64.
    public_key: String,
    #[schema(examples("Ed25519"))]
    algorithm: &'static str,
}

/// The log's size, and `size` checked against it.
async fn within_log(state: &AppState, principal: &Principal, name: &str, size: u64) -> Result<u64, ApiError> {
    let log = state.store.log_size(principal.org.id).await? as u64;
    if size > log {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("{name} {size} is beyond the log, which holds {log} entries"),
        ));
    }
    Ok(log)
}

/// `GET …/audit/checkpoint[?tree_size=N][&format=note]`: the latest signed
/// checkpoint (signed now if the log has grown since), or the one at `N`.
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}/audit/checkpoint",
    operation_id = "get_checkpoint",
    tag = "tamper-evidence",
    params(
        crate::http::responses::OrgPath,
        ("tree_size" = Option<u64>, Query, minimum = 0,
            description = "The checkpoint at this size (at most the log's); default: the latest."),
        ("format" = Option<String>, Query, pattern = "^(json|note)$",
            description = "`json` (the default) or `note`: the signed note alone, as text."),
    ),
    responses(
        (status = 200, description = "The checkpoint.",
            content((Checkpoint = "application/json"), (String = "text/plain"))),
        crate::http::responses::ReadRefused,
    ),
    security(("api_key" = []), ("session" = [])),
)]
pub async fn checkpoint(
    State(state): State<AppState>,
    principal: Principal,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    principal.authorize(Action::ReadAudit)?;
    let (formats, rest): (Vec<_>, Vec<_>) = pairs.into_iter().partition(|(k, _)| k == "format");
    let as_note = match formats.as_slice() {
        [] => false,
        [(_, v)] if v == "json" => false,
        [(_, v)] if v == "note" => true,
        [(_, v)] => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("format must be json or note, not {v:?}"),
            ));
        }
        _ => return Err(ApiError::bad_request("invalid_query", "format may be given only once")),
    };
    let [size] = numbers(&rest, ["tree_size"])?;
    let cp = match size {
        Some(n) => {
            within_log(&state, &principal, "tree_size", n).await?;
            state.checkpoints.at_size(&principal.org, n).await?
        }
        None => state.checkpoints.current(&principal.org).await?,
    };
    reads::record(&state, &principal, Read::from_query(ReadKind::Checkpoint, &rest, 0));
    if as_note {
        let mut resp = cp.note.into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return Ok(resp);
    }
    let origin = state.checkpoints.origin(&principal.org)?;
    Ok(Json(checkpoint_body(&state, cp, origin.as_str())).into_response())
}

/// `GET …/audit/proofs/inclusion?seq=N[&tree_size=M]`.
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}/audit/proofs/inclusion",
    operation_id = "get_inclusion_proof",
    tag = "tamper-evidence",
    params(
        crate::http::responses::OrgPath,
        ("seq" = u64, Query, minimum = 1, description = "The entry's sequence number."),
        ("tree_size" = Option<u64>, Query, minimum = 1,
            description = "The tree to prove inclusion in (from `seq` to the log's size); default: the whole log."),
    ),
    responses(
        (status = 200, description = "The proof.", body = InclusionProof),
        crate::http::responses::ReadRefused,
    ),
    security(("api_key" = []), ("session" = [])),
)]
pub async fn inclusion(
    State(state): State<AppState>,
    principal: Principal,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<InclusionProof>, ApiError> {
    principal.authorize(Action::ReadAudit)?;
    let [seq, size] = numbers(&pairs, ["seq", "tree_size"])?;
    let seq = seq.ok_or_else(|| ApiError::bad_request("invalid_query", "seq is required"))?;
    let log = within_log(&state, &principal, "tree_size", size.unwrap_or(0)).await?;
    let size = size.unwrap_or(log);
    if seq == 0 || seq > size {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("seq must be from 1 to the tree size ({size})"),
        ));
    }
    let refs = merkle::inclusion_proof_nodes(seq - 1, size)
        .map_err(|e| ApiError::bad_request("invalid_query", e.to_string()))?;
    let leaf_id = merkle::NodeId::leaf(seq - 1);
    let ids = merkle::needed_nodes(&refs)
        .into_iter()
        .chain(merkle::frontier_ids(size))
        .chain([leaf_id]);
    let tree = TreeView::load(state.store.as_ref(), principal.org.id, ids).await?;
    let (proof, leaf, root) = (tree.proof(&refs)?, tree.node(leaf_id)?, tree.root(size)?);
    reads::record(
        &state,
        &principal,
        Read::from_query(ReadKind::InclusionProof, &pairs, 0),
    );
    Ok(Json(InclusionProof {
        seq,
        leaf_index: seq - 1,
        tree_size: size,
        leaf_hash: b64(&leaf),
        root_hash: b64(&root),
        proof: proof.iter().map(b64).collect(),
    }))
}

/// `GET …/audit/proofs/consistency?from=A&to=B`.
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}/audit/proofs/consistency",
    operation_id = "get_consistency_proof",
    tag = "tamper-evidence",
    params(
        crate::http::responses::OrgPath,
        ("from" = u64, Query, minimum = 0, description = "The older tree size."),
        ("to" = u64, Query, minimum = 0, description = "The newer tree size, at most the log's."),
    ),
    responses(
        (status = 200, description = "The proof that the tree of `to` entries extends the tree of `from`.",
            body = ConsistencyProof),
        crate::http::responses::ReadRefused,
    ),
    security(("api_key" = []), ("session" = [])),
)]
pub async fn consistency(
    State(state): State<AppState>,
    principal: Principal,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<ConsistencyProof>, ApiError> {
    principal.authorize(Action::ReadAudit)?;
    let [from, to] = numbers(&pairs, ["from", "to"])?;
    let (Some(from), Some(to)) = (from, to) else {
        return Err(ApiError::bad_request(
            "invalid_query",
            "from and to (tree sizes) are required",
        ));
    };
    within_log(&state, &principal, "to", to).await?;
    if from > to {
        return Err(ApiError::bad_request(
            "invalid_query",
            "from must not be larger than to",
        ));
    }
    let refs =
        merkle::consistency_proof_nodes(from, to).map_err(|e| ApiError::bad_request("invalid_query", e.to_string()))?;
    let ids = merkle::needed_nodes(&refs)
        .into_iter()
        .chain(merkle::frontier_ids(from))
        .chain(merkle::frontier_ids(to));
    let tree = TreeView::load(state.store.as_ref(), principal.org.id, ids).await?;
    let proof = tree.proof(&refs)?;
    reads::record(
        &state,
        &principal,
        Read::from_query(ReadKind::ConsistencyProof, &pairs, 0),
    );
    Ok(Json(ConsistencyProof {
        from,
        to,
        from_root: b64(&tree.root(from)?),
        to_root: b64(&tree.root(to)?),
        proof: proof.iter().map(b64).collect(),
    }))
}

/// `GET /v1/audit/signing-key`: the key that signs every checkpoint, as a
/// signed-note verifier key. Public: anyone may check a checkpoint.
#[utoipa::path(
    get,
    path = "/v1/audit/signing-key",
    operation_id = "get_signing_key",
    tag = "tamper-evidence",
    responses(
        (status = 200, description = "The public key.", body = SigningKey),
    )
)]
pub async fn signing_key(State(state): State<AppState>) -> Json<SigningKey> {
    let key = state.checkpoints.key();
    Json(SigningKey {
        name: key.name().to_string(),
        verifier_key: key.verifier_key().to_string(),
        public_key: STANDARD.encode(key.public_key()),
        algorithm: "Ed25519",
    })
}
