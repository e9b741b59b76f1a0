//! How much a SIEM should care about an event, and that one judgement on
//! each format's own scale (syslog, CEF, OCSF).
//!
//! The table covers the built-in catalog. What raises an event above Low
//! is what a security team watches for: who may do what (roles, single
//! sign-on, passwords reset by someone else), credentials (API keys), data
//! leaving or being destroyed (exports, webhooks, streams, purges), controls
//! being switched off (guardrails, webhooks disabled, SIEM streams deleted)
//! and failed sign-ins. Routine reads and session bookkeeping are
//! Informational. An operator's own events are not known here and are
//! Informational.

/// A five-step scale, the one OCSF uses (without its Fatal and Other).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    /// No built-in event is critical; the step is kept so the scale maps
    /// one to one onto the formats'.
    Critical,
}

/// Every built-in event's severity.
const TABLE: &[(&str, Severity)] = &[
    ("organization.created", Severity::Low),
    ("organization.renamed", Severity::Low),
    ("organization.sso_configured", Severity::High),
    ("organization.member_added", Severity::Low),
    ("organization.member_invited", Severity::Low),
    ("organization.member_password_reset", Severity::High),
    ("organization.member_password_changed", Severity::Low),
    ("organization.member_removed", Severity::Medium),
    ("organization.member_role_changed", Severity::High),
    ("organization.member_provisioned", Severity::Low),
    ("project.created", Severity::Low),
    ("project.deleted", Severity::Low),
    ("project.renamed", Severity::Low),
    ("api_key.created", Severity::Medium),
    ("api_key.revoked", Severity::Medium),
    ("api_key.last_used_updated", Severity::Informational),
    ("guardrail.created", Severity::Low),
    ("guardrail.updated", Severity::Low),
    ("guardrail.enabled", Severity::Low),
    ("guardrail.disabled", Severity::Medium),
    ("guardrail.deleted", Severity::Medium),
    ("alert.created", Severity::Low),
    ("alert.updated", Severity::Low),
    ("alert.triggered", Severity::Low),
    ("alert.deleted", Severity::Low),
    ("billing.plan_upgraded", Severity::Low),
    ("billing.plan_downgraded", Severity::Medium),
    ("billing.payment_method_changed", Severity::Low),
    ("data_export.requested", Severity::Medium),
    ("data_export.downloaded", Severity::High),
    ("evaluation.template_created", Severity::Low),
    ("evaluation.template_deleted", Severity::Low),
    ("prompt.version_published", Severity::Low),
    ("prompt.version_rolled_back", Severity::Low),
    ("webhook.created", Severity::Medium),
    ("webhook.updated", Severity::Medium),
    ("webhook.deleted", Severity::Low),
    ("webhook.disabled", Severity::Medium),
    ("webhook.secret_rotated", Severity::Low),
    ("webhook.redelivered", Severity::Medium),
    ("webhook.replayed", Severity::Medium),
    // A stream sends the log out; deleting one blinds the SIEM.
    ("stream.created", Severity::Medium),
    ("stream.updated", Severity::Medium),
    ("stream.deleted", Severity::High),
    ("audit_log.viewed", Severity::Informational),
    ("audit_log.retention_purged", Severity::Medium),
    ("audit_log.subject_erased", Severity::Medium),
    ("session.signed_in", Severity::Informational),
    ("session.sign_in_failed", Severity::Medium),
    ("session.signed_out", Severity::Informational),
    ("session.ended", Severity::Informational),
];

/// The severity of `event`; Informational for events the built-in catalog
/// does not have.
pub fn of_event(event: &str) -> Severity {
    TABLE
        .iter()
        .find(|(name, _)| *name == event)
        .map_or(Severity::Informational, |(_, s)| *s)
}

/// The built-in table, for documentation and tests.
pub fn table() -> &'static [(&'static str, Severity)] {
    TABLE
}

impl Severity {
    /// The RFC 5424 severity: 6 informational, 5 notice, 4 warning,
    /// 3 error, 2 critical. Alert and emergency are left to the host's own
    /// failures.
    pub fn syslog(self) -> u8 {
        match self {
            Severity::Informational => 6,
            Severity::Low => 5,
            Severity::Medium => 4,
            Severity::High => 3,
            Severity::Critical => 2,
        }
    }

    /// The CEF severity, 0..=10, each inside its CEF band (0-3 low, 4-6
    /// medium, 7-8 high, 9-10 very high).
    pub fn cef(self) -> u8 {
        match self {
            Severity::Informational => 1,
            Severity::Low => 3,
            Severity::Medium => 5,
            Severity::High => 8,
            Severity::Critical => 10,
        }
    }

    /// The OCSF `severity_id`.
    pub fn ocsf_id(self) -> u8 {
        match self {
            Severity::Informational => 1,
            Severity::Low => 2,
            Severity::Medium => 3,
            Severity::High => 4,
            Severity::Critical => 5,
        }
    }

    /// The OCSF `severity`, the caption of [`Severity::ocsf_id`].
    pub fn ocsf_name(self) -> &'static str {
        match self {
            Severity::Informational => "Informational",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Catalog;

    #[test]
    fn the_table_holds_exactly_the_built_in_events() {
        let mut names: Vec<_> = TABLE.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        let catalog = Catalog::builtin();
        let want: Vec<_> = catalog.events().map(|e| e.name.as_str()).collect();
        assert_eq!(names, want);
    }

    #[test]
    fn security_relevant_events_rank_above_routine_ones() {
        assert_eq!(of_event("organization.member_role_changed"), Severity::High);
        assert_eq!(of_event("session.sign_in_failed"), Severity::Medium);
        assert_eq!(of_event("project.created"), Severity::Low);
        assert_eq!(of_event("session.signed_in"), Severity::Informational);
        assert_eq!(of_event("dataset.created"), Severity::Informational);
        assert_eq!(of_event(""), Severity::Informational);
    }

    #[test]
    fn every_scale_keeps_the_order() {
        let all = [
            Severity::Informational,
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ];
        for pair in all.windows(2) {
            let (lo, hi) = (pair[0], pair[1]);
            assert!(lo.syslog() > hi.syslog(), "syslog counts down");
            assert!(lo.cef() < hi.cef());
            assert!(lo.ocsf_id() < hi.ocsf_id());
        }
        assert!(all.iter().all(|s| s.cef() <= 10 && (1..=5).contains(&s.ocsf_id())));
        assert!(all.iter().all(|s| (2..=6).contains(&s.syslog())));
    }
}
