//! [`AccountStore`] on PostgreSQL: organizations, members, accounts,
//! invitations and projects.

use async_trait::async_trait;
use auditlog_domain::invitation::Invitation;
use auditlog_domain::member::{Member, Project, User};
use auditlog_domain::org::NewOrg;
use auditlog_domain::store::AccountStore;
use auditlog_domain::{Org, OrgId, Role, StoreError, Timestamp};

use crate::PostgresStore;
use crate::error::{conflict_or, db_err};
use crate::rows::{ORG_COLUMNS, get, qualified};
use crate::{db, rows};

#[async_trait]
impl AccountStore for PostgresStore {
    async fn create_org(&self, org: NewOrg, now: Timestamp) -> Result<Org, StoreError> {
        db::transaction(&self.inner.pool, org, move |tx, org| {
            Box::pin(async move {
                let days = org.enterprise_retention_days.map(i64::from);
                let row = db::query_one(
                    tx,
                    "INSERT INTO orgs (slug, name, plan, enterprise_retention_days, created_at) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING org_id",
                    &[&org.slug, &org.name, &org.plan.as_str(), &days, &now.millis()],
                )
                .await
                .map_err(|e| conflict_or(e, format!("organization {:?}", org.slug)))?;
                let id: i64 = get(&row, 0)?;
                db::execute(tx, "INSERT INTO log_heads (org_id, size) VALUES ($1, 0)", &[&id]).await?;
                Ok(org.created(OrgId(id), now))
            })
        })
        .await
    }

    async fn org_by_slug(&self, slug: &str) -> Result<Option<Org>, StoreError> {
        let client = self.client().await?;
        db::query_opt(
            &client,
            &format!("SELECT {ORG_COLUMNS} FROM orgs WHERE slug = $1"),
            &[&slug],
        )
        .await
        .map_err(db_err)?
        .map(|r| rows::org(&r))
        .transpose()
    }

    async fn orgs(&self) -> Result<Vec<Org>, StoreError> {
        let client = self.client().await?;
        db::query(&client, &format!("SELECT {ORG_COLUMNS} FROM orgs ORDER BY org_id"), &[])
            .await
            .map_err(db_err)?
            .iter()
            .map(rows::org)
            .collect()
    }

    async fn sso_client_secret(&self, org: OrgId) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let row = db::query_opt(
            &client,
            "SELECT sso_client_secret FROM orgs WHERE org_id = $1",
            &[&org.0],
        )
        .await
        .map_err(db_err)?;
        row.map(|r| get::<Option<Vec<u8>>>(&r, 0))
            .transpose()
            .map(Option::flatten)
    }

    async fn members(&self, org: OrgId) -> Result<Vec<Member>, StoreError> {
        let client = self.client().await?;
        db::query(
            &client,
            "SELECT email, role, added_at FROM memberships WHERE org_id = $1 ORDER BY email",
            &[&org.0],
        )
        .await
        .map_err(db_err)?
        .iter()
        .map(rows::member)
        .collect()
    }

    async fn member(&self, org: OrgId, email: &str) -> Result<Option<Member>, StoreError> {
        let client = self.client().await?;
        db::query_opt(
            &client,
            "SELECT email, role, added_at FROM memberships WHERE org_id = $1 AND email = $2",
            &[&org.0, &email],
        )
        .await
        .map_err(db_err)?
        .map(|r| rows::member(&r))
        .transpose()
    }

    async fn user(&self, email: &str) -> Result<Option<User>, StoreError> {
        let client = self.client().await?;
        db::query_opt(
            &client,
            "SELECT email, password_hash FROM users WHERE email = $1",
            &[&email],
        )
        .await
        .map_err(db_err)?
        .map(|r| {
            Ok(User {
                email: get(&r, 0)?,
                password_hash: get(&r, 1)?,
            })
        })
        .transpose()
    }

    async fn memberships(&self, email: &str) -> Result<Vec<(Org, Role)>, StoreError> {
        let client = self.client().await?;
        db::query(
            &client,
            &format!(
                "SELECT {}, m.role FROM memberships m JOIN orgs o ON o.org_id = m.org_id \
                 WHERE m.email = $1 ORDER BY o.slug",
                qualified("o", ORG_COLUMNS)
            ),
            &[&email],
        )
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| {
            let role: &str = get(r, rows::ORG_COLUMN_COUNT)?;
            let role = role
                .parse()
                .map_err(|_| StoreError::Internal(format!("unknown role {role:?}")))?;
            Ok((rows::org(r)?, role))
        })
        .collect()
    }

    async fn invitation(&self, token_hash: &[u8; 32]) -> Result<Option<Invitation>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {} FROM invitations WHERE token_hash = $1",
            rows::INVITATION_COLUMNS
        );
        db::query_opt(&client, &sql, &[&&token_hash[..]])
            .await
            .map_err(db_err)?
            .map(|r| rows::invitation(&r))
            .transpose()
    }

    async fn projects(&self, org: OrgId) -> Result<Vec<Project>, StoreError> {
        let client = self.client().await?;
        db::query(
            &client,
            "SELECT id, name, created_at FROM projects WHERE org_id = $1 ORDER BY created_at, id",
            &[&org.0],
        )
        .await
        .map_err(db_err)?
        .iter()
        .map(rows::project)
        .collect()
    }

    async fn project(&self, org: OrgId, id: &str) -> Result<Option<Project>, StoreError> {
        let client = self.client().await?;
        db::query_opt(
            &client,
            "SELECT id, name, created_at FROM projects WHERE org_id = $1 AND id = $2",
            &[&org.0, &id],
        )
        .await
        .map_err(db_err)?
        .map(|r| rows::project(&r))
        .transpose()
    }
}
