//! `auditlog stream create|list|enable|disable|delete`: SIEM streams from
//! the host, under the same rules as the API (the server's
//! `streams::settings`), each change recorded in the organization's log
//! with `submitted_by` naming the operator.

use auditlog_domain::change::Change;
use auditlog_domain::entry::Resource;
use auditlog_domain::sealed::SecretSealer;
use auditlog_domain::stream::{Stream, StreamState};
use auditlog_domain::{Clock, Org, Store, SystemClock};
use auditlog_server::workers::streams::StreamPolicy;
use auditlog_server::workers::streams::settings::{Proposed, Rules, TlsInput, created_details, settings};
use serde_json::json;

use crate::admin::{append, by_operator};
use crate::backend::{AnyError, open_keyed};
use crate::cli::{StreamCommand, StreamCreateArgs, StreamIdArgs};

pub async fn run(command: StreamCommand) -> Result<(), AnyError> {
    match command {
        StreamCommand::Create(args) => create(*args).await,
        StreamCommand::List(args) => {
            let store = open_keyed(&args.db.database, None, false).await?;
            let org = org(store.as_ref(), &args.org).await?;
            for s in store.streams(org.id).await? {
                let state = match (&s.settings.enabled, &s.state.failing_since) {
                    (false, _) => "disabled".to_owned(),
                    (true, None) => "healthy".to_owned(),
                    (true, Some(since)) => {
                        format!("failing since {since}: {}", s.state.last_error.as_deref().unwrap_or(""))
                    }
                };
                let c = &s.settings;
                let through = s.state.cursor;
                println!(
                    "{}\t{}\t{}\tdelivered through seq {through}\t{state}",
                    c.id,
                    c.destination.to_url(),
                    c.format.as_str()
                );
            }
            Ok(())
        }
        StreamCommand::Enable(args) => set_enabled(args, true).await,
        StreamCommand::Disable(args) => set_enabled(args, false).await,
        StreamCommand::Delete(args) => delete(args).await,
    }
}

async fn org(store: &dyn Store, slug: &str) -> Result<Org, AnyError> {
    Ok(store
        .org_by_slug(slug)
        .await?
        .ok_or_else(|| format!("no organization {slug:?}; create it with `auditlog org create`"))?)
}

fn read(path: Option<&std::path::Path>) -> Result<Option<String>, AnyError> {
    path.map(|p| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()).into()))
        .transpose()
}

fn resource(id: &str) -> Resource {
    Resource {
        kind: "stream".into(),
        id: id.to_owned(),
        name: None,
    }
}

async fn create(args: StreamCreateArgs) -> Result<(), AnyError> {
    let key_path = crate::signing_key::path(args.signing.signing_key.as_deref(), &args.db.database)?;
    let sealer = SecretSealer::derive(&crate::signing_key::load_or_create(&key_path)?.seed());
    let policy = StreamPolicy {
        allowed_subnets: args.policy.allow_subnets.unwrap_or_default(),
        allow_plaintext: args.policy.allow_plaintext.unwrap_or(false),
    };
    let catalog = crate::serve::load_catalog(args.catalog.as_deref())?;
    let rules = Rules {
        policy: &policy,
        catalog: &catalog,
        sealer: Some(&sealer),
    };
    let proposed = Proposed {
        url: args.url,
        format: args.format,
        events: args.events,
        facility: args.facility,
        app_name: args.app_name,
        description: args.description,
        enabled: true,
        tls: TlsInput {
            ca_pem: read(args.ca.as_deref())?,
            client_cert_pem: read(args.client_cert.as_deref())?,
            client_key_pem: read(args.client_key.as_deref())?,
        },
    };
    let id = format!("st_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let settings =
        settings(&id, proposed, None, &rules).map_err(|e| format!("--{}", e.to_string().replace('_', "-")))?;
    let store = open_keyed(&args.db.database, None, false).await?;
    let org = org(store.as_ref(), &args.org).await?;
    let now = SystemClock.now();
    let details = created_details(&settings);
    let entry = by_operator(now, "stream.created", resource(&id), details);
    let stream = Stream {
        settings,
        state: StreamState::default(),
        created_at: now,
    };
    append(
        store.as_ref(),
        &org,
        vec![Change::CreateStream(Box::new(stream))],
        entry,
    )
    .await?;
    println!("{id}");
    Ok(())
}

async fn set_enabled(args: StreamIdArgs, enabled: bool) -> Result<(), AnyError> {
    let store = open_keyed(&args.db.database, None, false).await?;
    let org = org(store.as_ref(), &args.org).await?;
    let stream = store
        .stream(org.id, &args.id)
        .await?
        .ok_or_else(|| format!("no stream {:?} in {}", args.id, org.slug))?;
    if stream.settings.enabled == enabled {
        println!(
            "{} is already {}",
            args.id,
            if enabled { "enabled" } else { "disabled" }
        );
        return Ok(());
    }
    let mut settings = stream.settings;
    settings.enabled = enabled;
    let details = json!({
        "destination": settings.destination.to_url(),
        "changes": {"enabled": {"old": !enabled, "new": enabled}},
    });
    let entry = by_operator(SystemClock.now(), "stream.updated", resource(&args.id), details);
    let change = Change::UpdateStream {
        settings: Box::new(settings),
        keep_tls_key: true,
    };
    append(store.as_ref(), &org, vec![change], entry).await?;
    println!("{} {}", args.id, if enabled { "enabled" } else { "disabled" });
    Ok(())
}

async fn delete(args: StreamIdArgs) -> Result<(), AnyError> {
    let store = open_keyed(&args.db.database, None, false).await?;
    let org = org(store.as_ref(), &args.org).await?;
    let stream = store
        .stream(org.id, &args.id)
        .await?
        .ok_or_else(|| format!("no stream {:?} in {}", args.id, org.slug))?;
    let details = json!({"destination": stream.settings.destination.to_url()});
    let entry = by_operator(SystemClock.now(), "stream.deleted", resource(&args.id), details);
    append(
        store.as_ref(),
        &org,
        vec![Change::DeleteStream { id: args.id.clone() }],
        entry,
    )
    .await?;
    println!("deleted {}", args.id);
    Ok(())
}
