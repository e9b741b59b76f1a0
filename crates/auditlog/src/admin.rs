//! `auditlog org create`, `org sso`, `key create` and `member add`: the
//! first organization, its single sign-on, keys and people, before anyone
//! can sign in.
//!
//! Each records what it does in the organization's log, as the API would,
//! with `submitted_by` naming the command line and the operator (`cli`,
//! `user@host`): a door into the log that records nothing would let the
//! host's operator act unseen.

use auditlog_domain::NewEntry;
use auditlog_domain::api_key;
use auditlog_domain::api_key::Scope;
use auditlog_domain::change::Change;
use auditlog_domain::entry::Resource;
use auditlog_domain::member::normalise_email;
use auditlog_domain::org::{NewOrg, validate_slug};
use auditlog_domain::password;
use auditlog_domain::personal::Subject;
use auditlog_domain::sso;
use auditlog_domain::store::AppendRequest;
use auditlog_domain::store::NewApiKey;
use auditlog_domain::{Clock, Org, Role, Store, SubmittedBy, SubmitterKind, SystemClock, Timestamp};
use serde_json::json;

use crate::backend::{AnyError, open_keyed};
use crate::cli::{KeyCreateArgs, MemberAddArgs, MemberEraseArgs, OrgCreateArgs, OrgSsoArgs};

pub async fn create_org(args: OrgCreateArgs) -> Result<(), AnyError> {
    validate_slug(&args.slug)?;
    if args.name.trim().is_empty() {
        return Err("--name must not be empty".into());
    }
    if args.retention_days.is_some() && args.plan != auditlog_domain::Plan::Enterprise {
        return Err("--retention-days applies only to --plan enterprise".into());
    }
    let store = open_keyed(&args.db.database, None, false).await?;
    let now = SystemClock.now();
    let org = store
        .create_org(
            NewOrg {
                slug: args.slug,
                name: args.name,
                plan: args.plan,
                enterprise_retention_days: args.retention_days,
            },
            now,
        )
        .await?;
    let entry = by_operator(
        now,
        "organization.created",
        Resource {
            kind: "organization".into(),
            id: org.slug.clone(),
            name: Some(org.name.clone()),
        },
        json!({"name": org.name, "plan": org.plan, "retention_days": org.retention_days()}),
    );
    append(store.as_ref(), &org, Vec::new(), entry).await?;
    println!(
        "created organization {} ({}) on the {} plan; entries are kept for {} days",
        org.slug,
        org.name,
        org.plan,
        org.retention_days()
    );
    Ok(())
}

/// Sets or removes an organization's single sign-on under the API's rules
/// (the domain's `sso::settings`), its secret sealed with the key the
/// server seals with, recording `organization.sso_configured`. The
/// operator may turn enforcement on without an SSO session: they can turn
/// it off again from here.
pub async fn configure_sso(args: OrgSsoArgs) -> Result<(), AnyError> {
    let key_path = crate::signing_key::path(args.signing.signing_key.as_deref(), &args.db.database)?;
    let sealer = auditlog_domain::sealed::SecretSealer::derive(&crate::signing_key::load_or_create(&key_path)?.seed());
    let store = open_keyed(&args.db.database, args.signing.signing_key.as_deref(), false).await?;
    let org = store
        .org_by_slug(&args.slug)
        .await?
        .ok_or_else(|| format!("no organization {:?}; create it with `auditlog org create`", args.slug))?;
    let config = match (args.remove, args.issuer, args.client_id) {
        (false, Some(issuer), Some(client_id)) => {
            let client_secret = match std::env::var("AUDITLOG_SSO_CLIENT_SECRET") {
                Ok(secret) => Some(secret),
                Err(_) if args.client_secret_stdin => Some(read_line("the client secret")?),
                Err(_) => None,
            };
            let input = sso::SettingsInput {
                issuer,
                client_id,
                client_secret,
                enforced: args.enforced,
                allowed_domains: args.allowed_domains,
                provision_role: args.provision_role,
            };
            let config = sso::settings(input, org.sso.as_ref(), |s| sealer.seal(s)).map_err(|p| {
                format!(
                    "{}: {}",
                    p.field.trim_start_matches("sso.").replace('_', "-"),
                    p.message
                )
            })?;
            Some(config)
        }
        _ => None,
    };
    let Some(details) = sso::change_details(config.as_ref(), org.sso.as_ref()) else {
        println!("single sign-on of {} is already as given; nothing recorded", org.slug);
        return Ok(());
    };
    let entry = by_operator(
        SystemClock.now(),
        "organization.sso_configured",
        Resource {
            kind: "organization".into(),
            id: org.slug.clone(),
            name: Some(org.name.clone()),
        },
        details,
    );
    let removed = config.is_none();
    append(store.as_ref(), &org, vec![Change::ConfigureSso(config)], entry).await?;
    if removed {
        println!("removed single sign-on from {}", org.slug);
    } else {
        println!(
            "single sign-on of {} is set; people sign in at /login (new people at /login?org={})",
            org.slug, org.slug
        );
    }
    Ok(())
}

pub async fn create_key(args: KeyCreateArgs) -> Result<(), AnyError> {
    let store = open_keyed(&args.db.database, None, false).await?;
    let org = store
        .org_by_slug(&args.org)
        .await?
        .ok_or_else(|| format!("no organization {:?}; create it with `auditlog org create`", args.org))?;
    let mut scopes = args.scopes;
    scopes.sort();
    scopes.dedup();
    let secret = record_key(store.as_ref(), &org, &args.name, scopes.clone()).await?;
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
    read_line("the password")
}

/// One line of standard input, naming `what` if it cannot be read.
fn read_line(what: &str) -> Result<String, AnyError> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read {what} from stdin: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

pub async fn add_member(args: MemberAddArgs) -> Result<(), AnyError> {
    let email = normalise_email(&args.email)?;
    let password = read_password()?;
    let hash = password::hash(&password).map_err(|e| format!("{e} (from AUDITLOG_PASSWORD or stdin)"))?;
    let store = open_keyed(&args.db.database, None, false).await?;
    let org = store
        .org_by_slug(&args.org)
        .await?
        .ok_or_else(|| format!("no organization {:?}; create it with `auditlog org create`", args.org))?;
    match make_member(store.as_ref(), &org, &email, args.role, &hash, operator()).await? {
        Some(role) => println!(
            "{email} is already a member of {} ({role}); their password is set",
            org.slug
        ),
        None => println!("added {email} to {} as {}; they can sign in now", org.slug, args.role),
    }
    Ok(())
}

/// Erases a person's personal data, as `POST /v1/orgs/{org}/erasures` does,
/// recorded as done by the operator on this host.
pub async fn erase_member(args: MemberEraseArgs) -> Result<(), AnyError> {
    let subject = Subject::new(&args.email).ok_or("--email names nobody")?;
    let explicit = args.signing.signing_key.as_deref();
    let personal = crate::backend::personal_data(&args.db.database, explicit, false)?.ok_or(
        "no signing key was found (--signing-key, or beside the SQLite file): the service has sealed nothing yet",
    )?;
    let store = open_keyed(&args.db.database, explicit, false).await?;
    let org = store
        .org_by_slug(&args.org)
        .await?
        .ok_or_else(|| format!("no organization {:?}", args.org))?;
    let now = SystemClock.now();
    let writes = store.as_ref();
    let erased = auditlog_server::erasure::erase(
        writes,
        &personal,
        org.id,
        &subject,
        |resource, details| by_operator(now, auditlog_server::erasure::ERASED_EVENT, resource, details),
        |request| auditlog_server::erasure::append_one(writes, request, now),
    )
    .await?;
    println!(
        "erased {} from {}: {} entries held their values; recorded as seq {} (subject {})",
        subject.as_str(),
        org.slug,
        erased.entries,
        erased.entry.seq,
        erased.subject
    );
    Ok(())
}

/// Sets a person's password and makes them a member of `org` with `role`,
/// recording `organization.member_added` (or, for a member already,
/// `organization.member_password_changed`) in the same transaction, as
/// submitted by `submitter`. Returns the role they already had if they were
/// a member (only the password changes then).
pub async fn make_member(
    store: &dyn Store,
    org: &Org,
    email: &str,
    role: Role,
    password_hash: &str,
    submitter: SubmittedBy,
) -> Result<Option<Role>, AnyError> {
    let now = SystemClock.now();
    let existing = store.member(org.id, email).await?.map(|m| m.role);
    let resource = Resource::member(email);
    let set = Change::SetPassword {
        email: email.to_owned(),
        password_hash: password_hash.to_owned(),
    };
    // The operator acts as the service itself: there is no signed-in person.
    let (changes, mut entry) = match existing {
        Some(_) => (
            vec![set],
            NewEntry::by_system(
                now,
                "organization.member_password_changed",
                resource,
                json!({"member": email, "method": "operator"}),
            ),
        ),
        None => (
            vec![
                set,
                Change::AddMember {
                    email: email.to_owned(),
                    role,
                },
            ],
            NewEntry::by_system(
                now,
                "organization.member_added",
                resource,
                json!({"member": email, "role": role, "via": "command line"}),
            ),
        ),
    };
    entry.submitted_by = submitter;
    append(store, org, changes, entry).await?;
    Ok(existing)
}

/// The operator on this host, as `submitted_by` names the command line.
pub fn operator() -> SubmittedBy {
    let user = ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    SubmittedBy::new(SubmitterKind::Cli, format!("{user}@{host}"))
}

/// An entry the operator's command records.
pub(crate) fn by_operator(now: Timestamp, event: &str, resource: Resource, details: serde_json::Value) -> NewEntry {
    NewEntry {
        submitted_by: operator(),
        ..NewEntry::by_system(now, event, resource, details)
    }
}

/// Applies `changes` and records `entry` in one transaction.
pub(crate) async fn append(
    store: &dyn Store,
    org: &Org,
    changes: Vec<Change>,
    entry: NewEntry,
) -> Result<(), AnyError> {
    let request = AppendRequest {
        org_id: org.id,
        changes,
        entries: vec![entry],
    };
    let mut out = store.append(vec![request], SystemClock.now()).await?;
    out.pop().ok_or("no result")??;
    Ok(())
}

/// Creates a key, recording `api_key.created` as the API does, and returns
/// its secret, the only time it exists in clear.
async fn record_key(store: &dyn Store, org: &Org, name: &str, scopes: Vec<Scope>) -> Result<String, AnyError> {
    let key = api_key::generate();
    let scope_names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    let entry = by_operator(
        SystemClock.now(),
        "api_key.created",
        Resource {
            kind: "api_key".into(),
            id: key.prefix.to_string(),
            name: Some(name.to_owned()),
        },
        json!({"prefix": key.prefix.as_str(), "name": name, "scopes": scope_names}),
    );
    let new = NewApiKey {
        org_id: org.id,
        prefix: key.prefix.clone(),
        name: name.into(),
        scopes,
        hash: key.hash.clone(),
        created_by: Some(operator()),
    };
    append(store, org, vec![Change::CreateKey(new)], entry).await?;
    Ok(key.secret)
}
