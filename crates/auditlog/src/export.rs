//! `auditlog export`: an organization's filtered log as CSV, JSON Lines or
//! OCSF events, straight from the database, for operators (the API's export
//! serves everyone else).
//!
//! It takes the API's filter parameters as `key=value` arguments, so the
//! same selection reads the same way in both places, honours the
//! organization's retention window, pins the log's size at the start (a
//! consistent snapshot), writes one page at a time, and records itself in
//! the log like an export through the API: `data_export.requested` before
//! the first row, `data_export.downloaded` after the last.

use std::io::Write;

use auditlog_domain::cursor::Cursor;
use auditlog_domain::entry::Resource;
use auditlog_domain::export_format::PageWriter;
use auditlog_domain::filter::{Filter, Page, parse_listing};
use auditlog_domain::store::AppendRequest;
use auditlog_domain::{Clock, NewEntry, Org, Store, SystemClock};
use serde_json::json;

use crate::backend::{AnyError, open_keyed};
use crate::cli::ExportArgs;

/// Rows read per page: the unit of memory.
const PAGE_ROWS: u32 = 2000;

pub async fn run(args: ExportArgs) -> Result<(), AnyError> {
    let given = given_filter(&args)?;
    let store = open_keyed(&args.db.database, None, false).await?;
    let org = store
        .org_by_slug(&args.org)
        .await?
        .ok_or_else(|| format!("no organization {:?}", args.org))?;
    let now = SystemClock.now();
    let mut filter = given.clone();
    filter.within_retention(&org, now);
    filter.max_seq = Some(store.log_size(org.id).await?);

    let export_id = uuid::Uuid::now_v7().to_string();
    record(
        store.as_ref(),
        &org,
        "data_export.requested",
        &export_id,
        json!({"format": args.format.name(), "filters": given, "via": "command line"}),
    )
    .await?;
    let (rows, bytes) = write_all(store.as_ref(), &org, &filter, &args).await?;
    record(
        store.as_ref(),
        &org,
        "data_export.downloaded",
        &export_id,
        json!({"format": args.format.name(), "rows": rows, "bytes": bytes, "via": "command line"}),
    )
    .await?;
    if let Some(path) = &args.output {
        eprintln!("exported {rows} rows ({bytes} bytes) to {}", path.display());
    }
    Ok(())
}

/// The filters as given (`key=value`, as the API's parameters), without
/// the retention bound the export adds.
fn given_filter(args: &ExportArgs) -> Result<Filter, AnyError> {
    let pairs: Vec<(String, String)> = args
        .filters
        .iter()
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| format!("filter {f:?} is not key=value (for example event=api_key.*)"))
        })
        .collect::<Result<_, _>>()?;
    if let Some((k, _)) = pairs.iter().find(|(k, _)| k == "limit" || k == "cursor") {
        return Err(format!("export takes no {k}: it writes the whole filtered view").into());
    }
    let catalog = crate::serve::load_catalog(args.catalog.as_deref())?;
    let listing = parse_listing(&pairs, &catalog, &[]).map_err(|problems| {
        problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    Ok(listing.filter)
}

/// Writes every page of the filtered view to the output, with progress on
/// stderr when the output is a file; answers rows and bytes written.
async fn write_all(store: &dyn Store, org: &Org, filter: &Filter, args: &ExportArgs) -> Result<(u64, u64), AnyError> {
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut writer = PageWriter::new(args.format, &org.slug);
    let (mut rows, mut bytes, mut after) = (0u64, 0u64, None);
    loop {
        let page = store
            .list(
                org.id,
                filter,
                Page {
                    limit: PAGE_ROWS,
                    after,
                },
            )
            .await?;
        let chunk = writer.page(&page);
        out.write_all(&chunk)?;
        rows += page.len() as u64;
        bytes += chunk.len() as u64;
        if args.output.is_some() && rows > 0 && rows.is_multiple_of(100_000) {
            eprintln!("exported {rows} rows…");
        }
        if page.len() < PAGE_ROWS as usize {
            break;
        }
        after = page.last().map(|e| Cursor {
            timestamp: e.timestamp,
            seq: e.seq,
        });
    }
    out.flush()?;
    Ok((rows, bytes))
}

/// Records one of the export's own entries, as the system acting for the
/// operator at the command line.
async fn record(
    store: &dyn Store,
    org: &Org,
    event: &str,
    export_id: &str,
    details: serde_json::Value,
) -> Result<(), AnyError> {
    let entry = NewEntry {
        // The operator's command line vouches for it.
        submitted_by: crate::admin::operator(),
        ..NewEntry::by_system(
            SystemClock.now(),
            event,
            Resource {
                kind: "data_export".into(),
                id: export_id.to_owned(),
                name: None,
            },
            details,
        )
    };
    for result in store
        .append(vec![AppendRequest::entries(org.id, vec![entry])], SystemClock.now())
        .await?
    {
        result?;
    }
    Ok(())
}
