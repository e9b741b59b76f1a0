//! Who is who: organizations, their members and projects, people's
//! accounts and the invitations that bring them in.

use async_trait::async_trait;

use crate::invitation::Invitation;
use crate::member::{Member, Project, User};
use crate::org::NewOrg;
use crate::store::StoreError;
use crate::{Org, OrgId, Role, Timestamp};

/// Organizations, members, accounts, invitations and projects.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    async fn create_org(&self, org: NewOrg, now: Timestamp) -> Result<Org, StoreError>;

    async fn org_by_slug(&self, slug: &str) -> Result<Option<Org>, StoreError>;

    async fn orgs(&self) -> Result<Vec<Org>, StoreError>;

    /// The organization's single sign-on client secret, sealed, if set.
    async fn sso_client_secret(&self, org: OrgId) -> Result<Option<Vec<u8>>, StoreError>;

    async fn members(&self, org: OrgId) -> Result<Vec<Member>, StoreError>;

    async fn member(&self, org: OrgId, email: &str) -> Result<Option<Member>, StoreError>;

    async fn user(&self, email: &str) -> Result<Option<User>, StoreError>;

    /// Every organization the person belongs to, with their role.
    async fn memberships(&self, email: &str) -> Result<Vec<(Org, Role)>, StoreError>;

    /// The invitation or reset with this token hash, used or not.
    async fn invitation(&self, token_hash: &[u8; 32]) -> Result<Option<Invitation>, StoreError>;

    async fn projects(&self, org: OrgId) -> Result<Vec<Project>, StoreError>;

    async fn project(&self, org: OrgId, id: &str) -> Result<Option<Project>, StoreError>;
}
