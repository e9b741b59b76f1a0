//! `auditlog org create`, `key create` and `member add`: the first
//! organization, keys and people, before anyone can sign in.

use auditlog_domain::NewEntry;
use auditlog_domain::api_key;
use auditlog_domain::api_key::Scope;
use auditlog_domain::change::Change;
use auditlog_domain::entry::Resource;
use auditlog_domain::member::normalise_email;
use auditlog_domain::org::{NewOrg, validate_slug};
use auditlog_domain::password;
use auditlog_domain::store::AppendRequest;
use auditlog_domain::store::NewApiKey;
use auditlog_domain::{Clock, Org, Role, Store, SystemClock};
use serde_json::json;

use crate::backend::{AnyError, open};
use crate::cli::{KeyCreateArgs, MemberAddArgs, OrgCreateArgs};

pub async fn create_org(args: OrgCreateArgs) -> Result<(), AnyError> {
    validate_slug(&args.slug)?;
    if args.name.trim().is_empty() {
        return Err("--name must not be empty".into());
    }
    if args.retention_days.is_some() && args.plan != auditlog_domain::Plan::Enterprise {
        return Err("--retention-days applies only to --plan enterprise".into());
    }
    let store = open(&args.db.database).await?;
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
    let store = open(&args.db.database).await?;
    let org = store
        .org_by_slug(&args.org)
        .await?
        .ok_or_else(|| format!("no organization {:?}; create it with `auditlog org create`", args.org))?;
    let mut scopes = args.scopes;
    scopes.sort();
    scopes.dedup();
    let secret = make_key(store.as_ref(), &org, &args.name, scopes.clone()).await?;
    let prefix = &secret[..12];
    let scopes: Vec<_> = scopes.iter().map(|s| s.as_str()).collect();
    println!(
        "created API key {} for {} with scopes {}; it is shown once, store it now:",
        prefix,
        org.slug,
        scopes.join(", ")
    );
    println!("{secret}");
    Ok(())
}

fn read_password() -> Result<String, AnyError> {
    if let Ok(p) = std::env::var("AUDITLOG_PASSWORD") {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

pub async fn add_member(args: MemberAddArgs) -> Result<(), AnyError> {
    let email = normalise_email(&args.email)?;
    let password = read_password()?;
    let hash = password::hash(&password).map_err(|e| format!("{e} (from AUDITLOG_PASSWORD or stdin)"))?;
    let store = open(&args.db.database).await?;
    let org = store
        .org_by_slug(&args.org)
        .await?
        .ok_or_else(|| format!("no organization {:?}; create it with `auditlog org create`", args.org))?;
    match make_member(store.as_ref(), &org, &email, args.role, &hash).await? {
        Some(role) => println!(
            "{email} is already a member of {} ({role}); their password is set",
            org.slug
        ),
        None => println!("added {email} to {} as {}; they can sign in now", org.slug, args.role),
    }
    Ok(())
}

/// Sets a person's password and makes them a member of `org` with `role`,
/// recording `organization.member_added`. Returns the role they already
/// had if they were a member (only the password changes then).
pub async fn make_member(
    store: &dyn Store,
    org: &Org,
    email: &str,
    role: Role,
    password_hash: &str,
) -> Result<Option<Role>, AnyError> {
    let now = SystemClock.now();
    store.set_password(email, password_hash, now).await?;
    if let Some(m) = store.member(org.id, email).await? {
        return Ok(Some(m.role));
    }
    // The operator acts as the service itself: there is no signed-in person.
    let entry = NewEntry::by_system(
        now,
        "organization.member_added",
        Resource {
            kind: "member".into(),
            id: email.to_owned(),
            name: None,
        },
        json!({"member": email, "role": role, "via": "command line"}),
    );
    let request = AppendRequest {
        org_id: org.id,
        changes: vec![Change::AddMember {
            email: email.to_owned(),
            role,
        }],
        entries: vec![entry],
    };
    let mut out = store.append(vec![request], now).await?;
    out.pop().ok_or("no result")??;
    Ok(None)
}

/// Creates a key and returns its secret, the only time it exists in clear.
pub async fn make_key(store: &dyn Store, org: &Org, name: &str, scopes: Vec<Scope>) -> Result<String, AnyError> {
    let key = api_key::generate();
    store
        .create_api_key(
            NewApiKey {
                org_id: org.id,
                prefix: key.prefix.clone(),
                name: name.into(),
                scopes,
                hash: key.hash.clone(),
            },
            SystemClock.now(),
        )
        .await?;
    Ok(key.secret)
}
