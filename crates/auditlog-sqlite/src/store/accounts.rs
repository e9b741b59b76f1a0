//! [`AccountStore`] on SQLite: organizations, members, accounts,
//! invitations and projects.

use async_trait::async_trait;
use auditlog_domain::invitation::Invitation;
use auditlog_domain::member::{Member, Project, User};
use auditlog_domain::org::NewOrg;
use auditlog_domain::store::AccountStore;
use auditlog_domain::{Org, OrgId, Role, StoreError, Timestamp};
use r2d2_sqlite::rusqlite;
use r2d2_sqlite::rusqlite::{OptionalExtension, params};

use crate::SqliteStore;
use crate::rows;
use crate::rows::{INVITATION_COLUMNS, ORG_COLUMNS, db_err, org_from_row};

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_org(&self, org: NewOrg, now: Timestamp) -> Result<Org, StoreError> {
        self.write(move |conn| {
            let tx = conn.transaction().map_err(db_err)?;
            tx.execute(
                "INSERT INTO orgs (slug, name, plan, enterprise_retention_days, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![org.slug, org.name, org.plan.as_str(), org.enterprise_retention_days, now.millis()],
            )
            .map_err(|e| rows::conflict_or(e, format!("organization {:?}", org.slug)))?;
            let id = tx.last_insert_rowid();
            tx.execute("INSERT INTO log_heads (org_id, size) VALUES (?1, 0)", [id])
                .map_err(db_err)?;
            tx.commit().map_err(db_err)?;
            Ok(org.created(OrgId(id), now))
        })
        .await
    }

    async fn org_by_slug(&self, slug: &str) -> Result<Option<Org>, StoreError> {
        let slug = slug.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {} FROM orgs WHERE slug = ?1", rows::ORG_COLUMNS))
                .and_then(|mut s| s.query_row([slug], org_from_row).optional())
                .map_err(db_err)
        })
        .await
    }

    async fn orgs(&self) -> Result<Vec<Org>, StoreError> {
        self.read(|conn| {
            let mut s = conn
                .prepare_cached(&format!("SELECT {ORG_COLUMNS} FROM orgs ORDER BY org_id"))
                .map_err(db_err)?;
            let rows = s.query_map([], org_from_row).map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn sso_client_secret(&self, org: OrgId) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT sso_client_secret FROM orgs WHERE org_id = ?1")
                .map_err(db_err)?
                .query_row([org.0], |r| r.get(0))
                .optional()
                .map(Option::flatten)
                .map_err(db_err)
        })
        .await
    }

    async fn members(&self, org: OrgId) -> Result<Vec<Member>, StoreError> {
        self.read(move |conn| {
            let mut s = conn
                .prepare_cached("SELECT email, role, added_at FROM memberships WHERE org_id = ?1 ORDER BY email")
                .map_err(db_err)?;
            let rows = s.query_map([org.0], rows::member_from_row).map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn member(&self, org: OrgId, email: &str) -> Result<Option<Member>, StoreError> {
        let email = email.to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT email, role, added_at FROM memberships WHERE org_id = ?1 AND email = ?2")
                .and_then(|mut s| s.query_row(params![org.0, email], rows::member_from_row).optional())
                .map_err(db_err)
        })
        .await
    }

    async fn user(&self, email: &str) -> Result<Option<User>, StoreError> {
        let email = email.to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT email, password_hash FROM users WHERE email = ?1")
                .and_then(|mut s| {
                    s.query_row([email], |r| {
                        Ok(User {
                            email: r.get(0)?,
                            password_hash: r.get(1)?,
                        })
                    })
                    .optional()
                })
                .map_err(db_err)
        })
        .await
    }

    async fn memberships(&self, email: &str) -> Result<Vec<(Org, Role)>, StoreError> {
        let email = email.to_owned();
        self.read(move |conn| {
            let cols: Vec<String> = ORG_COLUMNS.split(", ").map(|c| format!("o.{c}")).collect();
            let mut s = conn
                .prepare_cached(&format!(
                    "SELECT {}, m.role FROM memberships m JOIN orgs o ON o.org_id = m.org_id WHERE m.email = ?1 ORDER BY o.slug",
                    cols.join(", ")
                ))
                .map_err(db_err)?;
            let rows = s
                .query_map([email], |r| {
                    let org = org_from_row(r)?;
                    let role: String = r.get(rows::ORG_COLUMN_COUNT)?;
                    let role = role.parse().map_err(|_| {
                        let at = rows::ORG_COLUMN_COUNT;
                        rusqlite::Error::FromSqlConversionFailure(at, rusqlite::types::Type::Text, "unknown role".into())
                    })?;
                    Ok((org, role))
                })
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn invitation(&self, token_hash: &[u8; 32]) -> Result<Option<Invitation>, StoreError> {
        let hash = *token_hash;
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {INVITATION_COLUMNS} FROM invitations WHERE token_hash = ?1"
            ))
            .and_then(|mut s| s.query_row([&hash[..]], rows::invitation_from_row).optional())
            .map_err(db_err)
        })
        .await
    }

    async fn projects(&self, org: OrgId) -> Result<Vec<Project>, StoreError> {
        self.read(move |conn| {
            let mut s = conn
                .prepare_cached("SELECT id, name, created_at FROM projects WHERE org_id = ?1 ORDER BY created_at, id")
                .map_err(db_err)?;
            let rows = s.query_map([org.0], rows::project_from_row).map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn project(&self, org: OrgId, id: &str) -> Result<Option<Project>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT id, name, created_at FROM projects WHERE org_id = ?1 AND id = ?2")
                .and_then(|mut s| s.query_row(params![org.0, id], rows::project_from_row).optional())
                .map_err(db_err)
        })
        .await
    }
}
