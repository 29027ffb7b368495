//! What a deployment lets clients be: the profiles it enables (issue 10 point 6: a
//! FAPI-only deployment offers only FAPI profiles) and the scopes it defines (issue 12
//! point 6: scopes only from a server-configured catalogue, per profile where needed).
//! Registration, the admin API and client loading all ask these rules, and discovery
//! advertises them.

use crate::client::MetadataError;
use crate::error::ErrorCode;
use crate::policy::Profile;
use serde::{Deserialize, Serialize};

/// One scope of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeDefinition {
    /// The scope value (RFC 6749 §3.3 `scope-token`).
    pub name: String,
    /// Profiles whose clients may register it; empty means every enabled profile.
    #[serde(default)]
    pub profiles: Vec<Profile>,
    /// Given to a client that registers no `scope` at all.
    #[serde(default)]
    pub default: bool,
}

impl ScopeDefinition {
    fn new(name: &str, default: bool) -> ScopeDefinition {
        ScopeDefinition { name: name.to_string(), profiles: Vec::new(), default }
    }

    fn offered_to(&self, profile: Profile) -> bool {
        self.profiles.is_empty() || self.profiles.contains(&profile)
    }
}

/// The built-in catalogue, used when the configuration defines none: the OpenID Connect
/// scopes (OIDC Core 5.4, 11) as defaults, and the two open-banking examples, which a
/// client must ask for by name.
pub fn builtin_scopes() -> Vec<ScopeDefinition> {
    vec![
        ScopeDefinition::new("openid", true),
        ScopeDefinition::new("profile", true),
        ScopeDefinition::new("email", true),
        ScopeDefinition::new("offline_access", true),
        ScopeDefinition::new("accounts", false),
        ScopeDefinition::new("payments", false),
    ]
}

/// The deployment's rules for clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRules {
    /// Enabled profiles, in a fixed order.
    pub profiles: Vec<Profile>,
    /// The scope catalogue.
    pub scopes: Vec<ScopeDefinition>,
}

impl Default for ClientRules {
    /// Every profile, the built-in catalogue.
    fn default() -> Self {
        ClientRules { profiles: Profile::ALL.to_vec(), scopes: builtin_scopes() }
    }
}

fn invalid(field: &'static str, message: String) -> MetadataError {
    MetadataError { code: ErrorCode::InvalidClientMetadata, field, message }
}

/// A scope token per RFC 6749 §3.3: printable ASCII without space, `"` and `\`.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

impl ClientRules {
    /// Refuses a client of a profile this deployment does not enable (issue 10 point 6).
    pub fn check_profile(&self, profile: Profile) -> Result<(), MetadataError> {
        if self.profiles.contains(&profile) {
            Ok(())
        } else {
            Err(invalid("profile", format!("profile {} is not enabled on this server", profile.as_str())))
        }
    }

    /// The scopes a client of `profile` gets for its registered `scope` (issue 12 point 6):
    /// each must be in the catalogue for that profile; none registered means the
    /// catalogue's defaults for the profile, never every scope the server knows.
    pub fn registered_scopes(&self, profile: Profile, registered: Option<&str>) -> Result<Vec<String>, MetadataError> {
        let Some(registered) = registered else {
            return Ok(self
                .scopes
                .iter()
                .filter(|s| s.default && s.offered_to(profile))
                .map(|s| s.name.clone())
                .collect());
        };
        let mut out: Vec<String> = Vec::new();
        for s in registered.split(' ').filter(|s| !s.is_empty()) {
            if !self.scopes.iter().any(|d| d.name == s && d.offered_to(profile)) {
                return Err(invalid(
                    "scope",
                    format!("`{s}` is not a scope this server offers to profile {}", profile.as_str()),
                ));
            }
            if !out.iter().any(|o| o == s) {
                out.push(s.to_string());
            }
        }
        Ok(out)
    }

    /// `scopes_supported` for discovery: the catalogue's scopes offered to an enabled profile.
    pub fn scopes_supported(&self) -> Vec<&str> {
        self.scopes.iter().filter(|s| self.profiles.iter().any(|p| s.offered_to(*p))).map(|s| s.name.as_str()).collect()
    }

    /// Problems with the rules themselves, for configuration checks, as (configuration key,
    /// message): no profile, a scope that is not a valid scope token, a scope defined twice.
    /// (A scope only for disabled profiles is allowed: it is simply not offered.)
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.profiles.is_empty() {
            out.push(("profiles", "at least one profile must be enabled".to_string()));
        }
        for (i, s) in self.scopes.iter().enumerate() {
            if !is_scope_token(&s.name) {
                out.push(("scopes", format!("`{}` is not a scope token (RFC 6749 §3.3)", s.name)));
            }
            if self.scopes[..i].iter().any(|o| o.name == s.name) {
                out.push(("scopes", format!("`{}` is defined twice", s.name)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fapi_only() -> ClientRules {
        let mut scopes = builtin_scopes();
        scopes.push(ScopeDefinition { name: "legacy".into(), profiles: vec![Profile::OAuth2], default: true });
        ClientRules { profiles: vec![Profile::Fapi2Security, Profile::Fapi1Advanced], scopes }
    }

    #[test]
    fn only_enabled_profiles_register() {
        let r = fapi_only();
        assert!(r.check_profile(Profile::Fapi2Security).is_ok());
        let err = r.check_profile(Profile::OAuth2).unwrap_err();
        assert_eq!(err.field, "profile");
        assert!(err.message.contains("oauth2"), "{err}");
        assert!(ClientRules::default().check_profile(Profile::OAuth2).is_ok());
    }

    #[test]
    fn scopes_come_only_from_the_catalogue() {
        let r = fapi_only();
        assert_eq!(
            r.registered_scopes(Profile::Fapi2Security, Some("openid accounts openid")).unwrap(),
            ["openid", "accounts"]
        );
        let err = r.registered_scopes(Profile::Fapi2Security, Some("openid admin")).unwrap_err();
        assert_eq!((err.code, err.field), (ErrorCode::InvalidClientMetadata, "scope"));
        // Per-profile: `legacy` exists, but not for FAPI clients.
        assert!(r.registered_scopes(Profile::Fapi2Security, Some("legacy")).is_err());
        assert!(r.registered_scopes(Profile::OAuth2, Some("legacy")).is_ok());
    }

    #[test]
    fn no_registered_scope_means_the_defaults_not_everything() {
        let r = ClientRules::default();
        let got = r.registered_scopes(Profile::Fapi2Security, None).unwrap();
        assert_eq!(got, ["openid", "profile", "email", "offline_access"]);
        assert!(!got.iter().any(|s| s == "payments"));
        assert_eq!(fapi_only().registered_scopes(Profile::OAuth2, None).unwrap().last().unwrap(), "legacy");
    }

    #[test]
    fn discovery_lists_scopes_of_enabled_profiles() {
        let r = fapi_only();
        assert!(!r.scopes_supported().contains(&"legacy"));
        assert!(r.scopes_supported().contains(&"accounts"));
    }

    #[test]
    fn bad_rules_are_reported() {
        assert!(ClientRules::default().problems().is_empty());
        let mut r = fapi_only();
        r.scopes.push(ScopeDefinition::new("two words", false));
        r.scopes.push(ScopeDefinition::new("openid", false));
        r.profiles.clear();
        let p = r.problems().iter().map(|(key, message)| format!("{key}: {message}")).collect::<Vec<_>>().join("\n");
        for needle in [
            "profiles: at least one profile",
            "scopes: `two words` is not a scope token",
            "scopes: `openid` is defined twice",
        ] {
            assert!(p.contains(needle), "{needle}: {p}");
        }
    }
}
