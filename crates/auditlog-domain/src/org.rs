//! Organizations and their plans. The plan decides how long entries are kept
//! and, through that, which timestamps ingest still accepts.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// The store's key for an organization. Every table is keyed by it first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct OrgId(pub i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Plan {
    Team,
    Scale,
    Enterprise,
}

/// Retention of an enterprise organization when none was configured: seven
/// years, the longest period common compliance regimes ask for.
pub const DEFAULT_ENTERPRISE_RETENTION_DAYS: u32 = 2555;

impl Plan {
    /// Plans by size, for telling an upgrade from a downgrade.
    pub fn rank(self) -> u8 {
        match self {
            Plan::Team => 0,
            Plan::Scale => 1,
            Plan::Enterprise => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Team => "team",
            Plan::Scale => "scale",
            Plan::Enterprise => "enterprise",
        }
    }

    /// "Team", for sentences shown to people.
    pub fn label(self) -> &'static str {
        match self {
            Plan::Team => "Team",
            Plan::Scale => "Scale",
            Plan::Enterprise => "Enterprise",
        }
    }

    /// Days an entry is kept. Only enterprise plans choose their own.
    pub fn retention_days(self, enterprise_days: Option<u32>) -> u32 {
        match self {
            Plan::Team => 90,
            Plan::Scale => 365,
            Plan::Enterprise => enterprise_days.unwrap_or(DEFAULT_ENTERPRISE_RETENTION_DAYS),
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown plan {0:?}: expected team, scale or enterprise")]
pub struct UnknownPlan(pub String);

impl FromStr for Plan {
    type Err = UnknownPlan;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "team" => Ok(Plan::Team),
            "scale" => Ok(Plan::Scale),
            "enterprise" => Ok(Plan::Enterprise),
            _ => Err(UnknownPlan(s.to_owned())),
        }
    }
}

/// An organization's single sign-on through its OpenID Connect provider.
/// The client secret is kept sealed beside these settings and never shown;
/// `client_secret_set` says whether there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Sso {
    pub issuer: String,
    pub client_id: String,
    /// Members sign in through the provider only (owners with a break-glass
    /// password excepted).
    pub enforced: bool,
    /// Email domains whose people may sign in this way, lower case; empty
    /// allows any.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// The role of people who sign in without being members yet; `None`
    /// refuses them.
    #[serde(default)]
    pub provision_role: Option<crate::Role>,
    #[serde(default)]
    pub client_secret_set: bool,
}

/// What a change of the single sign-on settings stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoConfig {
    pub settings: Sso,
    /// The client secret, sealed; `None` keeps the stored one.
    pub sealed_secret: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub id: OrgId,
    /// The stable name in URLs (`/v1/orgs/{slug}/…`).
    pub slug: String,
    pub name: String,
    pub plan: Plan,
    /// Only meaningful for enterprise plans.
    pub enterprise_retention_days: Option<u32>,
    pub sso: Option<Sso>,
    pub created_at: Timestamp,
}

impl Org {
    pub fn retention_days(&self) -> u32 {
        self.plan.retention_days(self.enterprise_retention_days)
    }

    /// The oldest instant whose entries are still kept at `now`.
    pub fn retention_cutoff(&self, now: Timestamp) -> Timestamp {
        now.minus_days(self.retention_days())
    }

    /// What asking for `plan` and `retention_days` (either left out to keep
    /// the current one) changes: `None` when nothing would. Retention days
    /// are an enterprise setting only, and at least one.
    pub fn plan_change(&self, plan: Option<Plan>, retention_days: Option<u32>) -> Result<Option<PlanChange>, BadPlan> {
        let new = plan.unwrap_or(self.plan);
        let days = match (new, retention_days) {
            (Plan::Enterprise, Some(0)) => return Err(BadPlan::ZeroRetention),
            (Plan::Enterprise, days) => days.or(self.enterprise_retention_days),
            (_, Some(_)) => return Err(BadPlan::RetentionNotEnterprise),
            (_, None) => None,
        };
        let old_days = self.retention_days();
        let new_days = new.retention_days(days);
        if new == self.plan && new_days == old_days {
            return Ok(None);
        }
        Ok(Some(PlanChange {
            upgrade: new.rank() > self.plan.rank() || (new == self.plan && new_days > old_days),
            new,
            enterprise_retention_days: days,
            old_days,
            new_days,
        }))
    }
}

/// A change of plan or of retention, as [`Org::plan_change`] decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanChange {
    /// A higher plan, or the same plan keeping entries longer.
    pub upgrade: bool,
    pub new: Plan,
    pub enterprise_retention_days: Option<u32>,
    pub old_days: u32,
    pub new_days: u32,
}

impl PlanChange {
    /// The event that records it.
    pub fn event(&self) -> &'static str {
        if self.upgrade {
            "billing.plan_upgraded"
        } else {
            "billing.plan_downgraded"
        }
    }
}

/// A plan change refused before anything is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadPlan {
    #[error("retention_days must be at least 1")]
    ZeroRetention,
    #[error("retention_days can be set only on the enterprise plan")]
    RetentionNotEnterprise,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "organization slug {0:?} must be 2 to 63 characters of lower-case letters, digits and single hyphens, starting with a letter"
)]
pub struct BadSlug(pub String);

/// A new organization, checked before it reaches the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrg {
    pub slug: String,
    pub name: String,
    pub plan: Plan,
    pub enterprise_retention_days: Option<u32>,
}

impl NewOrg {
    /// The organization as a store created it, with the id it was given.
    pub fn created(self, id: OrgId, at: Timestamp) -> Org {
        Org {
            id,
            slug: self.slug,
            name: self.name,
            plan: self.plan,
            enterprise_retention_days: self.enterprise_retention_days,
            sso: None,
            created_at: at,
        }
    }
}

pub fn validate_slug(slug: &str) -> Result<(), BadSlug> {
    let b = slug.as_bytes();
    let ok = (2..=63).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && !slug.ends_with('-')
        && !slug.contains("--");
    if ok { Ok(()) } else { Err(BadSlug(slug.to_owned())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(plan: Plan, days: Option<u32>) -> Org {
        Org {
            id: OrgId(1),
            slug: "acme".into(),
            name: "Acme".into(),
            plan,
            enterprise_retention_days: days,
            sso: None,
            created_at: Timestamp(0),
        }
    }

    #[test]
    fn plan_changes_are_upgrades_or_downgrades_by_plan_then_retention() {
        let team = org(Plan::Team, None);
        let up = team.plan_change(Some(Plan::Scale), None).unwrap().unwrap();
        assert_eq!(up.event(), "billing.plan_upgraded");
        assert_eq!(team.plan_change(Some(Plan::Team), None).unwrap(), None);
        let ent = org(Plan::Enterprise, Some(400));
        let longer = ent.plan_change(None, Some(800)).unwrap().unwrap();
        assert_eq!(
            (longer.event(), longer.old_days, longer.new_days),
            ("billing.plan_upgraded", 400, 800)
        );
        let shorter = ent.plan_change(None, Some(30)).unwrap().unwrap();
        assert_eq!(shorter.event(), "billing.plan_downgraded");
        assert_eq!(shorter.enterprise_retention_days, Some(30));
        let down = ent.plan_change(Some(Plan::Team), None).unwrap().unwrap();
        assert_eq!(
            (down.event(), down.enterprise_retention_days),
            ("billing.plan_downgraded", None)
        );
    }

    #[test]
    fn retention_days_belong_to_enterprise_and_are_positive() {
        assert_eq!(
            org(Plan::Team, None).plan_change(None, Some(30)),
            Err(BadPlan::RetentionNotEnterprise)
        );
        assert_eq!(
            org(Plan::Enterprise, Some(30)).plan_change(None, Some(0)),
            Err(BadPlan::ZeroRetention)
        );
    }

    #[test]
    fn retention_follows_the_plan() {
        assert_eq!(Plan::Team.retention_days(Some(9)), 90);
        assert_eq!(Plan::Scale.retention_days(None), 365);
        assert_eq!(Plan::Enterprise.retention_days(Some(1000)), 1000);
        assert_eq!(Plan::Enterprise.retention_days(None), DEFAULT_ENTERPRISE_RETENTION_DAYS);
    }

    #[test]
    fn plans_parse_and_print() {
        for p in [Plan::Team, Plan::Scale, Plan::Enterprise] {
            assert_eq!(p.as_str().parse::<Plan>().unwrap(), p);
        }
        assert!("gold".parse::<Plan>().unwrap_err().to_string().contains("gold"));
    }

    #[test]
    fn slugs() {
        for good in ["acme", "acme-corp", "a1", "team-42-x"] {
            assert!(validate_slug(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a",
            "Acme",
            "1acme",
            "acme-",
            "ac--me",
            "acme corp",
            "acme/../x",
            &"a".repeat(64),
        ] {
            assert!(validate_slug(bad).is_err(), "{bad}");
        }
    }
}
