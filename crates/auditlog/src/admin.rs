//! `auditlog org create` and `auditlog key create`: the first organization
//! and keys, before any HTTP management exists.

use auditlog_domain::api_key;
use auditlog_domain::org::{NewOrg, validate_slug};
use auditlog_domain::store::NewApiKey;
use auditlog_domain::{Clock, SystemClock};

use crate::backend::{AnyError, open};
use crate::cli::{KeyCreateArgs, OrgCreateArgs};

pub async fn create_org(args: OrgCreateArgs) -> Result<(), AnyError> {
    validate_slug(&args.slug)?;
    if args.name.trim().is_empty() {
        return Err("--name must not be empty".into());
    }
    if args.retention_days.is_some() && args.plan != auditlog_domain::Plan::Enterprise {
        return Err("--retention-days applies only to --plan enterprise".into());
    }
    let store = open(&args.db.database)?;
    let org = store
        .create_org(
            NewOrg {
                slug: args.slug,
                name: args.name,
                plan: args.plan,
                enterprise_retention_days: args.retention_days,
            },
            SystemClock.now(),
        )
        .await?;
    println!(
        "created organization {} ({}) on the {} plan; entries are kept for {} days",
        org.slug,
        org.name,
        org.plan,
        org.retention_days()
    );
    Ok(())
}

pub async fn create_key(args: KeyCreateArgs) -> Result<(), AnyError> {
    let store = open(&args.db.database)?;
    let org = store
        .org_by_slug(&args.org)
        .await?
        .ok_or_else(|| format!("no organization {:?}; create it with `auditlog org create`", args.org))?;
    let mut scopes = args.scopes;
    scopes.sort();
    scopes.dedup();
    let key = api_key::generate();
    store
        .create_api_key(
            NewApiKey {
                org_id: org.id,
                prefix: key.prefix.clone(),
                name: args.name,
                scopes: scopes.clone(),
                hash: key.hash.clone(),
            },
            SystemClock.now(),
        )
        .await?;
    let scopes: Vec<_> = scopes.iter().map(|s| s.as_str()).collect();
    println!(
        "created API key {} for {} with scopes {}; it is shown once, store it now:",
        key.prefix,
        org.slug,
        scopes.join(", ")
    );
    println!("{}", key.secret);
    Ok(())
}
