//! The rules of single sign-on, apart from the protocol: which email
//! domains an organization admits, who a verified identity becomes, how a
//! session began, and whether enforcement lets that session in.
//!
//! The OpenID Connect exchange itself (discovery, keys, the ID token's
//! signature and claims) is the server's; it hands these rules only claims
//! it has already checked.

use serde::{Deserialize, Serialize};

use crate::Role;
use crate::member::{display_name, normalise_email};
use crate::org::{Org, OrgId, Sso, SsoConfig};

/// At most this many allowed domains per organization.
pub const MAX_DOMAINS: usize = 50;

/// How a session began.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SignInMethod {
    Password,
    /// Through an organization's provider; the session names which.
    Sso,
    /// An owner's password where single sign-on is enforced.
    BreakGlass,
}

impl SignInMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Sso => "sso",
            Self::BreakGlass => "break_glass",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Password, Self::Sso, Self::BreakGlass]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{0:?} is not a domain name (such as acme.com)")]
    NotADomain(String),
    #[error("at most {MAX_DOMAINS} domains")]
    TooMany,
}

/// The allowed domains as given, checked, lower-cased and without repeats.
pub fn normalise_domains(given: &[String]) -> Result<Vec<String>, DomainError> {
    if given.len() > MAX_DOMAINS {
        return Err(DomainError::TooMany);
    }
    let mut out: Vec<String> = Vec::with_capacity(given.len());
    for d in given {
        let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
        if !is_domain(&d) {
            return Err(DomainError::NotADomain(d));
        }
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}

/// Letters, digits and hyphens in dot-separated labels, at least two.
fn is_domain(d: &str) -> bool {
    let labels: Vec<&str> = d.split('.').collect();
    d.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// The stored form of the allowed domains (comma-separated; a domain holds
/// no comma), `None` for none.
pub fn stored_domains(domains: &[String]) -> Option<String> {
    (!domains.is_empty()).then(|| domains.join(","))
}

/// The allowed domains from their stored form.
pub fn domains_from_stored(stored: Option<&str>) -> Vec<String> {
    stored
        .map(|s| s.split(',').filter(|d| !d.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Single sign-on settings as an owner or admin gives them, through the API
/// or the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsInput {
    pub issuer: String,
    pub client_id: String,
    /// Needed the first time; `None` keeps the stored one.
    pub client_secret: Option<String>,
    pub enforced: bool,
    pub allowed_domains: Vec<String>,
    pub provision_role: Option<Role>,
}

/// Why settings were refused: the field (as the API names it, under `sso.`)
/// and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SettingsProblem {
    pub field: &'static str,
    pub message: String,
}

fn problem(field: &'static str, message: impl Into<String>) -> SettingsProblem {
    SettingsProblem {
        field,
        message: message.into(),
    }
}

/// Checks `input` against the stored settings `old` and gives the change to
/// make, its new secret sealed with `seal`. The issuer's place on the
/// network is the server's to judge (its operator's rules), not this.
pub fn settings(
    input: SettingsInput,
    old: Option<&Sso>,
    seal: impl FnOnce(&[u8]) -> Vec<u8>,
) -> Result<SsoConfig, SettingsProblem> {
    let issuer = input.issuer.trim().to_owned();
    if !(is_web_url(&issuer) && input.issuer.chars().count() <= 512) {
        return Err(problem("sso.issuer", "sso.issuer must be an https:// URL"));
    }
    let client_id =
        display_name("sso.client_id", &input.client_id, 256).map_err(|e| problem("sso.client_id", e.to_string()))?;
    let allowed_domains =
        normalise_domains(&input.allowed_domains).map_err(|e| problem("sso.allowed_domains", e.to_string()))?;
    if input.provision_role == Some(Role::Owner) {
        return Err(problem(
            "sso.provision_role",
            "people signing in for the first time cannot become owners",
        ));
    }
    let sealed_secret = match input.client_secret.as_deref().map(str::trim) {
        Some(secret) if !secret.is_empty() && secret.len() <= 1024 => Some(seal(secret.as_bytes())),
        Some(_) => {
            return Err(problem(
                "sso.client_secret",
                "sso.client_secret must be 1 to 1024 bytes",
            ));
        }
        None if old.is_some_and(|o| o.client_secret_set) => None,
        None => {
            return Err(problem(
                "sso.client_secret",
                "sso.client_secret is required to set up single sign-on",
            ));
        }
    };
    Ok(SsoConfig {
        settings: Sso {
            issuer,
            client_id,
            enforced: input.enforced,
            allowed_domains,
            provision_role: input.provision_role,
            client_secret_set: true,
        },
        sealed_secret,
    })
}

/// The details of `organization.sso_configured` for the change from `old`
/// to `new` (`None`: removed); `None` when nothing changes. The secret
/// itself is never among them, only whether it changed.
pub fn change_details(new: Option<&SsoConfig>, old: Option<&Sso>) -> Option<serde_json::Value> {
    let secret_changed = new.is_some_and(|c| c.sealed_secret.is_some());
    let settings = new.map(|c| &c.settings);
    if settings == old && !secret_changed {
        return None;
    }
    Some(match (settings, old) {
        (Some(s), _) => serde_json::json!({"issuer": s.issuer, "client_id": s.client_id, "enforced": s.enforced,
            "allowed_domains": s.allowed_domains, "provision_role": s.provision_role,
            "client_secret_changed": secret_changed, "action": "configured"}),
        (None, Some(old)) => {
            serde_json::json!({"issuer": old.issuer, "client_id": old.client_id, "enforced": false, "action": "removed"})
        }
        (None, None) => serde_json::json!({}),
    })
}

/// An `https://` (or `http://`, which the operator's rules then judge) URL
/// with a host written where it belongs. URL parsers forgive
/// `https:///host` and `https:\\host` by finding the host after the extra
/// slashes; an issuer is compared as text by identity providers, so such a
/// value is refused rather than read as another.
fn is_web_url(s: &str) -> bool {
    let lower = s.get(..8).map(str::to_ascii_lowercase).unwrap_or_default();
    let rest = if lower.starts_with("https://") {
        &s[8..]
    } else if lower.starts_with("http://") {
        &s[7..]
    } else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    !host.is_empty()
        && !rest.starts_with(['/', '\\'])
        && !s.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\\')
}

/// What a provider said about the person, its ID token already verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub email: Option<String>,
    pub email_verified: Option<bool>,
}

/// Why a verified identity may not sign in. Each is shown to the person
/// and recorded as the failed sign-in's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the identity provider sent no email address")]
    NoEmail,
    #[error("the identity provider has not verified this email address")]
    UnverifiedEmail,
    #[error("{0} is not in a domain this organization allows")]
    DomainNotAllowed(String),
    #[error("{0} is not a member of this organization")]
    NotAMember(String),
}

impl Refusal {
    /// The reason as recorded in `session.sign_in_failed`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoEmail => "no_email",
            Self::UnverifiedEmail => "unverified_email",
            Self::DomainNotAllowed(_) => "domain_not_allowed",
            Self::NotAMember(_) => "not_a_member",
        }
    }
}

/// Who a verified identity signs in as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// A member already.
    Member { email: String },
    /// New to the organization: added with this role first.
    Provision { email: String, role: Role },
}

impl Admission {
    pub fn email(&self) -> &str {
        match self {
            Self::Member { email } | Self::Provision { email, .. } => email,
        }
    }
}

/// Decides who `identity` signs in as, given the organization's settings
/// and the person's current role there, if any (looked up by the email the
/// identity carries, normalised as every email is).
pub fn admit(sso: &Sso, identity: &Identity, role: impl FnOnce(&str) -> Option<Role>) -> Result<Admission, Refusal> {
    let email = identity
        .email
        .as_deref()
        .and_then(|e| normalise_email(e).ok())
        .ok_or(Refusal::NoEmail)?;
    if identity.email_verified != Some(true) {
        return Err(Refusal::UnverifiedEmail);
    }
    if !email_allowed(&email, &sso.allowed_domains) {
        return Err(Refusal::DomainNotAllowed(email));
    }
    match (role(&email), sso.provision_role) {
        (Some(_), _) => Ok(Admission::Member { email }),
        (None, Some(role)) => Ok(Admission::Provision { email, role }),
        (None, None) => Err(Refusal::NotAMember(email)),
    }
}

/// Whether `email` (normalised) is in one of `allowed`; any when empty.
pub fn email_allowed(email: &str, allowed: &[String]) -> bool {
    let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    allowed.is_empty() || allowed.iter().any(|a| a == domain)
}

/// How a session began, as enforcement needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionOrigin {
    pub method: SignInMethod,
    /// The organization whose provider it came through, for `Sso`.
    pub sso_org: Option<OrgId>,
}

impl SessionOrigin {
    pub const PASSWORD: SessionOrigin = SessionOrigin {
        method: SignInMethod::Password,
        sso_org: None,
    };
    pub const BREAK_GLASS: SessionOrigin = SessionOrigin {
        method: SignInMethod::BreakGlass,
        sso_org: None,
    };

    pub fn sso(org: OrgId) -> SessionOrigin {
        SessionOrigin {
            method: SignInMethod::Sso,
            sso_org: Some(org),
        }
    }

    /// From the stored method and organization; an unknown method is read
    /// as a password sign-in, which enforcement admits least.
    pub fn from_stored(method: &str, sso_org: Option<i64>) -> SessionOrigin {
        SessionOrigin {
            method: SignInMethod::parse(method).unwrap_or(SignInMethod::Password),
            sso_org: sso_org.map(OrgId),
        }
    }
}

/// A sign-in sent to an identity provider, kept until the browser comes
/// back with its `state` (of which only the SHA-256 is kept) or it expires.
#[derive(Clone, PartialEq, Eq)]
pub struct Flow {
    pub state_hash: [u8; 32],
    pub org_id: OrgId,
    /// The nonce, PKCE verifier and browser binding, sealed by the server.
    pub sealed: Vec<u8>,
    pub expires_at: crate::Timestamp,
}

impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow")
            .field("org_id", &self.org_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What came of taking a flow by its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// The first time, before it expired.
    Fresh(Flow),
    /// Taken before, or expired: a replay (or a very slow person).
    Replayed(Flow),
    /// No such state.
    Unknown,
}

/// How long a person has to sign in at their provider.
pub const FLOW_TTL_MS: i64 = 10 * 60 * 1000;

/// Whether a session of `origin` may act in `org` as `role`. Where single
/// sign-on is enforced only a session begun through that organization's
/// provider may, or an owner's break-glass session.
pub fn admits(org: &Org, role: Role, origin: SessionOrigin) -> bool {
    let enforced = org.sso.as_ref().is_some_and(|s| s.enforced);
    !enforced
        || (origin.method == SignInMethod::Sso && origin.sso_org == Some(org.id))
        || (origin.method == SignInMethod::BreakGlass && role == Role::Owner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;
    use crate::org::Plan;

    fn sso(domains: &[&str], provision: Option<Role>) -> Sso {
        Sso {
            issuer: "https://idp.example".into(),
            client_id: "c".into(),
            enforced: false,
            allowed_domains: domains.iter().map(|d| d.to_string()).collect(),
            provision_role: provision,
            client_secret_set: true,
        }
    }

    fn verified(email: &str) -> Identity {
        Identity {
            email: Some(email.into()),
            email_verified: Some(true),
        }
    }

    #[test]
    fn settings_are_checked_and_the_secret_is_sealed_or_kept() {
        let input = |issuer: &str, secret: Option<&str>| SettingsInput {
            issuer: issuer.into(),
            client_id: "c".into(),
            client_secret: secret.map(str::to_owned),
            enforced: false,
            allowed_domains: vec![],
            provision_role: None,
        };
        let seal = |b: &[u8]| [b"sealed:", b].concat();
        let ok = settings(input(" https://idp.example/t ", Some("s")), None, seal).unwrap();
        assert_eq!(ok.settings.issuer, "https://idp.example/t");
        assert_eq!(ok.sealed_secret.as_deref(), Some(&b"sealed:s"[..]));
        for bad in [
            "https://",
            "https:///idp.example",
            "https:\\\\idp.example",
            "ftp://idp.example",
            "https://a b.example",
        ] {
            assert_eq!(
                settings(input(bad, Some("s")), None, seal).unwrap_err().field,
                "sso.issuer",
                "{bad}"
            );
        }
        assert_eq!(
            settings(input("https://idp.example", None), None, seal)
                .unwrap_err()
                .field,
            "sso.client_secret"
        );
        let stored = sso(&[], None);
        assert_eq!(
            settings(input("https://idp.example", None), Some(&stored), seal)
                .unwrap()
                .sealed_secret,
            None
        );
        let owner = SettingsInput {
            provision_role: Some(Role::Owner),
            ..input("https://idp.example", Some("s"))
        };
        assert_eq!(settings(owner, None, seal).unwrap_err().field, "sso.provision_role");
    }

    #[test]
    fn domains_are_checked_lower_cased_and_kept_once() {
        let given = vec!["Acme.COM".to_string(), "acme.com.".into(), "eu.acme.com".into()];
        assert_eq!(normalise_domains(&given).unwrap(), ["acme.com", "eu.acme.com"]);
        for bad in [
            "acme",
            "@acme.com",
            "acme..com",
            "-acme.com",
            "acme.com/x",
            "a,b.com",
            "",
        ] {
            assert!(normalise_domains(&[bad.to_string()]).is_err(), "{bad}");
        }
        let many: Vec<String> = (0..=MAX_DOMAINS).map(|i| format!("d{i}.com")).collect();
        assert_eq!(normalise_domains(&many), Err(DomainError::TooMany));
        let kept = stored_domains(&normalise_domains(&given).unwrap());
        assert_eq!(domains_from_stored(kept.as_deref()), ["acme.com", "eu.acme.com"]);
        assert_eq!(stored_domains(&[]), None);
    }

    #[test]
    fn members_sign_in_and_others_only_when_provisioned() {
        let member = |e: &str| (e == "ada@acme.com").then_some(Role::Admin);
        let s = sso(&[], None);
        assert_eq!(
            admit(&s, &verified("Ada@Acme.com"), member),
            Ok(Admission::Member {
                email: "ada@acme.com".into()
            })
        );
        assert_eq!(
            admit(&s, &verified("new@acme.com"), member),
            Err(Refusal::NotAMember("new@acme.com".into()))
        );
        let s = sso(&[], Some(Role::Viewer));
        assert_eq!(
            admit(&s, &verified("new@acme.com"), member),
            Ok(Admission::Provision {
                email: "new@acme.com".into(),
                role: Role::Viewer
            })
        );
    }

    #[test]
    fn an_email_must_be_present_verified_and_in_an_allowed_domain() {
        let s = sso(&["acme.com"], Some(Role::Viewer));
        let none = |_: &str| None;
        let no_email = Identity {
            email: None,
            email_verified: Some(true),
        };
        assert_eq!(admit(&s, &no_email, none), Err(Refusal::NoEmail));
        for flag in [None, Some(false)] {
            let unverified = Identity {
                email: Some("ada@acme.com".into()),
                email_verified: flag,
            };
            assert_eq!(admit(&s, &unverified, none), Err(Refusal::UnverifiedEmail));
        }
        assert_eq!(
            admit(&s, &verified("eve@evil.example"), none),
            Err(Refusal::DomainNotAllowed("eve@evil.example".into()))
        );
        // A subdomain is another domain.
        assert!(admit(&s, &verified("x@eu.acme.com"), none).is_err());
    }

    #[test]
    fn enforcement_admits_only_its_own_provider_and_owners_break_glass() {
        let mut org = Org {
            id: OrgId(7),
            slug: "acme".into(),
            name: "Acme".into(),
            plan: Plan::Team,
            enterprise_retention_days: None,
            created_at: Timestamp(0),
            sso: Some(sso(&[], None)),
        };
        let password = SessionOrigin {
            method: SignInMethod::Password,
            sso_org: None,
        };
        let own = SessionOrigin {
            method: SignInMethod::Sso,
            sso_org: Some(OrgId(7)),
        };
        let other = SessionOrigin {
            method: SignInMethod::Sso,
            sso_org: Some(OrgId(8)),
        };
        let glass = SessionOrigin {
            method: SignInMethod::BreakGlass,
            sso_org: None,
        };
        assert!(admits(&org, Role::Admin, password), "not enforced");
        org.sso.as_mut().unwrap().enforced = true;
        assert!(!admits(&org, Role::Owner, password));
        assert!(admits(&org, Role::Viewer, own));
        assert!(!admits(&org, Role::Viewer, other));
        assert!(admits(&org, Role::Owner, glass));
        assert!(!admits(&org, Role::Admin, glass));
    }

    #[test]
    fn methods_round_trip_their_stored_names() {
        for m in [SignInMethod::Password, SignInMethod::Sso, SignInMethod::BreakGlass] {
            assert_eq!(SignInMethod::parse(m.as_str()), Some(m));
        }
        assert_eq!(SignInMethod::parse("magic"), None);
    }
}
