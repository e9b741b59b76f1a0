//! `GET /v1/orgs/{org}/audit/export?format=csv|jsonl|ocsf&…filters`: the
//! whole filtered view as a download. `ocsf` is JSON Lines of OCSF events
//! (the organization, which each names, is the principal's).
//!
//! The body is produced page by page as the client reads it (hyper polls the
//! stream only when the socket can take more), so an export of any size
//! holds one page in memory. The log's size is pinned when the export
//! starts, making the file a consistent snapshot.
//!
//! Exports audit themselves: `data_export.requested` is committed before
//! the first byte is sent, and `data_export.downloaded` is committed before
//! the last chunk is — if it cannot be recorded the download fails instead
//! of completing unrecorded.
//!
//! With `proofs=true` the last line is the signed checkpoint the proofs are
//! for ([`checkpoint_line`]), so the file verifies on its own.

use auditlog_domain::StoreError;
use auditlog_domain::canonical::entry_leaf_hash;
use auditlog_domain::cursor::Cursor;
use auditlog_domain::entry::Resource;
use auditlog_domain::export_format::{ExportFormat, PageWriter, UnknownFormat, checkpoint_line};
use auditlog_domain::filter::{Filter, Page};
use auditlog_domain::merkle;
use auditlog_domain::permissions::Action;
use auditlog_domain::store::StoredCheckpoint;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use futures_util::stream;
use serde_json::json;

use crate::http::auth::Principal;
use crate::http::error::ApiError;
use crate::http::query_string::QueryPairs;
use crate::http::recorder::record;
use crate::http::routes::entries::listing;
use crate::http::routes::proofs::b64;
use crate::http::state::AppState;
use crate::workers::checkpointer::TreeView;

/// Rows fetched per page; one page is the unit of memory and of work.
const PAGE_ROWS: u32 = 2000;

struct Export {
    state: AppState,
    principal: Principal,
    filter: Filter,
    format: ExportFormat,
    export_id: String,
    after: Option<Cursor>,
    writer: PageWriter,
    /// The next page, being read while the current one is sent.
    prefetched: Option<tokio::task::JoinHandle<Result<Vec<auditlog_domain::Entry>, StoreError>>>,
    /// With `proofs=true`: the signed checkpoint every line's inclusion
    /// proof is for.
    proofs_at: Option<StoredCheckpoint>,
    finished: bool,
    rows: u64,
    bytes: u64,
}

impl Export {
    async fn fetch(&self, after: Option<Cursor>) -> Result<Vec<auditlog_domain::Entry>, StoreError> {
        let page = Page {
            limit: PAGE_ROWS,
            after,
        };
        self.state.store.list(self.principal.org.id, &self.filter, page).await
    }

    /// Entries as JSON lines, each with its leaf hash and its inclusion proof
    /// in the tree of `size` entries (which `auditlog verify` checks
    /// offline); the page's nodes are read at once.
    async fn lines_with_proofs(&self, entries: &[auditlog_domain::Entry], size: u64) -> Result<Vec<u8>, ApiError> {
        let refs = entries
            .iter()
            .map(|e| merkle::inclusion_proof_nodes((e.seq - 1) as u64, size))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| ApiError::Internal(err.to_string()))?;
        let ids = refs.iter().flat_map(|r| merkle::needed_nodes(r));
        let tree = TreeView::load(self.state.store.as_ref(), self.principal.org.id, ids).await?;
        let mut out = Vec::new();
        for (e, refs) in entries.iter().zip(&refs) {
            let hashes = tree.proof(refs)?;
            let mut value = serde_json::to_value(e).map_err(|err| ApiError::Internal(err.to_string()))?;
            if let Some(obj) = value.as_object_mut() {
                obj.insert("leaf_hash".into(), json!(b64(&entry_leaf_hash(e))));
                obj.insert(
                    "inclusion_proof".into(),
                    json!({"tree_size": size, "leaf_index": e.seq - 1, "hashes": hashes.iter().map(b64).collect::<Vec<_>>()}),
                );
            }
            serde_json::to_writer(&mut out, &value).map_err(|err| ApiError::Internal(err.to_string()))?;
            out.push(b'\n');
        }
        Ok(out)
    }

    /// The next chunk of the body, or `None` when it is complete.
    async fn next_chunk(&mut self) -> Option<Result<Bytes, ApiError>> {
        if self.finished {
            return None;
        }
        let fetched = match self.prefetched.take() {
            Some(task) => task
                .await
                .unwrap_or_else(|e| Err(StoreError::Internal(format!("export page task failed: {e}")))),
            None => self.fetch(self.after).await,
        };
        let entries = match fetched {
            Ok(e) => e,
            Err(e) => {
                // The status line is sent: the client sees only a cut body,
                // so the cause is told here.
                tracing::error!(error = %e, rows = self.rows, "an export failed part way; its body is cut short");
                self.finished = true;
                return Some(Err(e.into()));
            }
        };
        // Read the next page while this one is encoded and sent: the
        // database and the encoder work side by side. One page ahead at
        // most, so memory stays at two pages.
        if entries.len() == PAGE_ROWS as usize {
            let after = entries.last().map(|e| Cursor {
                timestamp: e.timestamp,
                seq: e.seq,
            });
            let (store, org, filter) = (self.state.store.clone(), self.principal.org.id, self.filter.clone());
            self.prefetched = Some(tokio::spawn(async move {
                store
                    .list(
                        org,
                        &filter,
                        Page {
                            limit: PAGE_ROWS,
                            after,
                        },
                    )
                    .await
            }));
        }
        let last_page = entries.len() < PAGE_ROWS as usize;
        let chunk = match &self.proofs_at {
            Some(cp) => match self.lines_with_proofs(&entries, cp.size).await {
                Ok(mut lines) if last_page => {
                    lines.extend(checkpoint_line(&cp.note));
                    lines
                }
                Ok(lines) => lines,
                Err(err) => {
                    self.finished = true;
                    return Some(Err(err));
                }
            },
            None => self.writer.page(&entries),
        };
        self.rows += entries.len() as u64;
        self.bytes += chunk.len() as u64;
        self.after = entries.last().map(|e| Cursor {
            timestamp: e.timestamp,
            seq: e.seq,
        });
        if last_page {
            self.finished = true;
            let entry = self.principal.entry(
                self.state.clock.now(),
                "data_export.downloaded",
                Resource {
                    kind: "data_export".into(),
                    id: self.export_id.clone(),
                    name: None,
                },
                json!({"format": self.format.name(), "rows": self.rows, "bytes": self.bytes}),
            );
            let recorded = record(&self.state, &self.principal, entry).await;
            if let Err(e) = recorded {
                tracing::error!(error = %e, "could not record data_export.downloaded; failing the download");
                return Some(Err(e));
            }
        }
        Some(Ok(Bytes::from(chunk)))
    }
}

/// The whole filtered view as a download, streamed. It is recorded:
/// `data_export.requested` before the first byte, `data_export.downloaded`
/// before the last (if that cannot be recorded, the download fails).
#[utoipa::path(
    get,
    path = "/v1/orgs/{org}/audit/export",
    operation_id = "export_events",
    tag = "audit",
    params(
        crate::http::responses::OrgPath,
        ("format" = Option<String>, Query,
            description = "`csv` (the default), `jsonl` (one entry per line) or `ocsf` (one OCSF 1.8.0 event \
                           per line, for a SIEM).",
            example = "csv", pattern = "^(csv|jsonl|ocsf)$"),
        ("proofs" = Option<bool>, Query,
            description = "With `format=jsonl`: each line with its leaf hash and inclusion proof in the tree \
                           whose size is in `X-Auditlog-Tree-Size`, and after the entries one line \
                           `{\"kind\": \"checkpoint\", \"note\": \"…\"}` holding that tree's signed checkpoint \
                           (the signed note), so `auditlog verify --key K --export FILE` needs nothing else."),
        crate::http::routes::entries::FilterParams,
    ),
    responses(
        (status = 200, description = "The entries, newest first: CSV (RFC 4180, one row per entry, the columns \
            id, seq, timestamp, actor_type, actor, event, resource_type, resource_id, resource_name, details, \
            ip_address, user_agent, submitted_by), JSON Lines (one entry per line; with proofs, then the checkpoint line) \
            or, for `ocsf`, JSON Lines of OCSF 1.8.0 events (one per entry, in the same order).",
            content((String = "text/csv"), (String = "application/jsonl")),
            headers(
                ("Content-Disposition" = String, description = "attachment; filename=\"audit-{org}-{time}.{csv|jsonl|ocsf.jsonl}\""),
                ("X-Auditlog-Tree-Size" = Option<u64>, description = "With proofs=true: the tree size the proofs are for."),
            )),
        crate::http::responses::ReadRefused,
    ),
    security(("api_key" = []), ("session" = [])),
)]
#[tracing::instrument(skip_all, fields(org = %principal.org.slug))]
pub async fn export(
    State(state): State<AppState>,
    principal: Principal,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    principal.authorize(Action::ReadAudit)?;
    if let Some((k, _)) = pairs.iter().find(|(k, _)| k == "limit" || k == "cursor") {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("export takes no {k}: it returns the whole filtered view"),
        ));
    }
    let req = listing(&pairs, &state, &principal.org, &["format", "proofs"])?;
    let (format, proofs) = format_and_proofs(&req)?;
    // The filters as the reader gave them, not the retention bound added.
    let filters_shown = listing_as_given(&pairs, &state)?;
    let mut filter = req.filter;
    let size = state.store.log_size(principal.org.id).await?;
    filter.max_seq = Some(size);
    // The checkpoint the proofs are checked against, signed if new.
    let proofs_at = match proofs {
        true => Some(state.checkpoints.at_size(&principal.org, size as u64).await?),
        false => None,
    };

    let export_id = uuid::Uuid::now_v7().to_string();
    let requested = principal.entry(
        state.clock.now(),
        "data_export.requested",
        Resource {
            kind: "data_export".into(),
            id: export_id.clone(),
            name: None,
        },
        json!({"format": format.name(), "filters": filters_shown}),
    );
    record(&state, &principal, requested).await?;

    let filename = format!(
        "audit-{}-{}.{}",
        principal.org.slug,
        state.clock.now().to_compact(),
        format.extension()
    );
    let writer = PageWriter::new(format, &principal.org.slug);
    let proof_size = proofs_at.as_ref().map(|cp| cp.size);
    let export = Export {
        state,
        principal,
        filter,
        format,
        export_id,
        after: None,
        writer,
        prefetched: None,
        proofs_at,
        finished: false,
        rows: 0,
        bytes: 0,
    };
    Ok(streamed(export, &filename, proof_size))
}

/// The `format` asked for (CSV unless given), and whether with proofs,
/// which only JSON Lines can carry.
fn format_and_proofs(req: &auditlog_domain::filter::ListingRequest) -> Result<(ExportFormat, bool), ApiError> {
    let proofs = crate::http::routes::entries::flag(req, "proofs")?;
    let formats: Vec<&str> = req
        .extra
        .iter()
        .filter(|(k, _)| k == "format")
        .map(|(_, v)| v.as_str())
        .collect();
    let format = match formats.as_slice() {
        [] => ExportFormat::Csv,
        [name] => name
            .parse()
            .map_err(|e: UnknownFormat| ApiError::bad_request("invalid_query", e.to_string()))?,
        _ => return Err(ApiError::bad_request("invalid_query", "format may be given only once")),
    };
    if proofs && format != ExportFormat::Jsonl {
        return Err(ApiError::bad_request(
            "invalid_query",
            "proofs=true needs format=jsonl: only an entry's own line has room for its proof",
        ));
    }
    Ok((format, proofs))
}

/// The export as a streamed download named `filename`.
fn streamed(export: Export, filename: &str, proof_size: Option<u64>) -> Response {
    let format = export.format;
    let body = stream::unfold(export, |mut ex| async move { ex.next_chunk().await.map(|c| (c, ex)) });
    let mut resp = Response::new(Body::from_stream(body));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    // The slug is restricted to [a-z0-9-], so the name needs no escaping.
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(size) = proof_size {
        // Which checkpoint to fetch: GET …/audit/checkpoint?tree_size=N.
        h.insert("x-auditlog-tree-size", HeaderValue::from(size));
    }
    resp
}

fn listing_as_given(pairs: &[(String, String)], state: &AppState) -> Result<Filter, ApiError> {
    auditlog_domain::filter::parse_listing(pairs, &state.catalog, &["format", "proofs"])
        .map(|r| r.filter)
        .map_err(|details| ApiError::BadRequest {
            code: "invalid_query",
            message: details.first().map(|p| p.message.clone()).unwrap_or_default(),
            details,
        })
}
