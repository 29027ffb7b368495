//! The OpenID Connect `claims` request parameter (OIDC Core §5.5, issue 10 point 7): the
//! individual claims a client asks for in the ID token and at the UserInfo endpoint, and an
//! essential `acr` with the values it accepts (§5.5.1.1).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ErrorCode, OAuthError, OAuthResult};

/// The one authentication context this server asserts: a password sign-in.
pub const PASSWORD_ACR: &str = "urn:strongroom:acr:password";

/// Longest `claims` value accepted: it travels in the pushed request and the code.
pub const MAX_CLAIMS_REQUEST_LEN: usize = 4096;

/// Claims the server sets itself in an ID token or UserInfo response: a `claims` request
/// never takes them from the user's profile.
const PROTOCOL_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "azp",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "sid",
    "at_hash",
    "c_hash",
    "s_hash",
];

/// What the client asked for, per target (§5.5: `id_token` and `userinfo`; other members are
/// ignored, as the spec demands of members not understood).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimsRequest {
    /// Claims asked for in the ID token.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub id_token: BTreeMap<String, ClaimRequirement>,
    /// Claims asked for at the UserInfo endpoint.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub userinfo: BTreeMap<String, ClaimRequirement>,
}

/// One requested claim (§5.5.1): `null`, or an object with `essential`, `value`, `values`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRequirement {
    /// Whether the client needs the claim to work.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub essential: bool,
    /// The one value asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// The values asked for, in order of preference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<Value>>,
}

fn invalid(d: &'static str) -> OAuthError {
    OAuthError::invalid_request(d)
}

/// OIDC Core §5.5: parses the `claims` parameter, a JSON object whose `id_token` and
/// `userinfo` members map claim names to `null` or a requirement object. Anything else
/// there is `invalid_request`.
pub fn parse_claims_request(raw: &str) -> OAuthResult<ClaimsRequest> {
    if raw.len() > MAX_CLAIMS_REQUEST_LEN {
        return Err(invalid("claims is too long"));
    }
    let value: Value = serde_json::from_str(raw).map_err(|_| invalid("claims is not a JSON object"))?;
    let Value::Object(top) = value else { return Err(invalid("claims is not a JSON object")) };
    Ok(ClaimsRequest { id_token: target(top.get("id_token"))?, userinfo: target(top.get("userinfo"))? })
}

fn target(member: Option<&Value>) -> OAuthResult<BTreeMap<String, ClaimRequirement>> {
    let Some(member) = member else { return Ok(BTreeMap::new()) };
    let Value::Object(claims) = member else { return Err(invalid("claims members must be JSON objects")) };
    let mut out = BTreeMap::new();
    for (name, requirement) in claims {
        let requirement = match requirement {
            Value::Null => ClaimRequirement::default(),
            Value::Object(o) => requirement_of(o)?,
            _ => return Err(invalid("a requested claim must be null or an object")),
        };
        out.insert(name.clone(), requirement);
    }
    Ok(out)
}

fn requirement_of(o: &Map<String, Value>) -> OAuthResult<ClaimRequirement> {
    let essential = match o.get("essential") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("essential must be true or false")),
    };
    let values = match o.get("values") {
        None => None,
        Some(Value::Array(v)) => Some(v.clone()),
        Some(_) => return Err(invalid("values must be an array")),
    };
    Ok(ClaimRequirement { essential, value: o.get("value").cloned(), values })
}

impl ClaimRequirement {
    /// Whether `candidate` is among the values the requirement names (any value when it
    /// names none).
    fn accepts(&self, candidate: &str) -> bool {
        let named: Vec<&Value> = self.value.iter().chain(self.values.iter().flatten()).collect();
        named.is_empty() || named.iter().any(|v| v.as_str() == Some(candidate))
    }
}

/// OIDC Core §5.5.1.1: an essential `acr` with values the server cannot assert makes the
/// authentication fail (`access_denied`); a voluntary one, or `acr_values`, does not.
pub fn check_essential_acr(request: Option<&ClaimsRequest>, asserted: &str) -> OAuthResult<()> {
    match request.and_then(|r| r.id_token.get("acr")) {
        Some(acr) if acr.essential && !acr.accepts(asserted) => {
            Err(OAuthError::new(ErrorCode::AccessDenied, "the essential acr values requested cannot be met")
                // Refused before any user acts: at PAR an ordinary 400 (RFC 9126 §2.3).
                .with_status(400))
        }
        _ => Ok(()),
    }
}

/// OIDC Core §5.5: the user's claims a `claims` request adds for one target, beside those the
/// scopes release. Claims the user does not have are left out (§5.5.1: even essential ones);
/// protocol claims are never taken from the profile.
pub fn individually_requested<'a>(
    names: impl IntoIterator<Item = &'a String>,
    user_claims: &Map<String, Value>,
) -> Map<String, Value> {
    names
        .into_iter()
        .filter(|name| !PROTOCOL_CLAIMS.contains(&name.as_str()))
        .filter_map(|name| user_claims.get(name).map(|v| (name.clone(), v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(v: Value) -> OAuthResult<ClaimsRequest> {
        parse_claims_request(&v.to_string())
    }

    /// OIDC-5.5: null and object requirements, both targets, unknown members ignored.
    #[test]
    fn parses_both_targets() {
        let r = parsed(json!({"id_token": {"email": null, "acr": {"essential": true, "values": ["a", "b"]}},
                              "userinfo": {"name": {"essential": false}}, "other": 1}))
        .unwrap();
        assert_eq!(r.id_token["email"], ClaimRequirement::default());
        assert!(r.id_token["acr"].essential);
        assert_eq!(r.id_token["acr"].values, Some(vec![json!("a"), json!("b")]));
        assert!(r.userinfo.contains_key("name"));
    }

    /// OIDC-5.5: malformed values are `invalid_request`.
    #[test]
    fn refuses_malformed_requests() {
        for bad in [
            json!([1]),
            json!({"id_token": []}),
            json!({"userinfo": {"name": 1}}),
            json!({"id_token": {"acr": {"essential": "yes"}}}),
            json!({"id_token": {"acr": {"values": "a"}}}),
        ] {
            assert_eq!(parsed(bad).unwrap_err().code, ErrorCode::InvalidRequest);
        }
        assert!(parse_claims_request("{").is_err());
        assert!(parse_claims_request(&format!("{{\"userinfo\":{{\"{}\":null}}}}", "x".repeat(5000))).is_err());
    }

    /// OIDC-5.5.1.1: an essential acr the server cannot assert fails; voluntary ones do not.
    #[test]
    fn essential_acr_must_be_met() {
        let ask = |v: Value| parsed(json!({"id_token": {"acr": v}})).unwrap();
        assert!(check_essential_acr(None, PASSWORD_ACR).is_ok());
        assert!(
            check_essential_acr(Some(&ask(json!({"essential": true, "values": [PASSWORD_ACR]}))), PASSWORD_ACR).is_ok()
        );
        assert!(
            check_essential_acr(Some(&ask(json!({"essential": true, "value": PASSWORD_ACR}))), PASSWORD_ACR).is_ok()
        );
        assert!(check_essential_acr(Some(&ask(json!({"essential": true}))), PASSWORD_ACR).is_ok());
        assert!(check_essential_acr(Some(&ask(json!({"values": ["urn:other"]}))), PASSWORD_ACR).is_ok());
        let e = check_essential_acr(Some(&ask(json!({"essential": true, "values": ["urn:other"]}))), PASSWORD_ACR)
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::AccessDenied);
    }

    /// OIDC-5.5: requested claims the user has are released; protocol claims never come from
    /// the profile.
    #[test]
    fn releases_only_the_users_claims() {
        let r = parsed(json!({"userinfo": {"email": null, "phone_number": null, "sub": null, "iss": null}})).unwrap();
        let user = json!({"email": "a@example.com", "name": "A", "sub": "forged", "iss": "forged"});
        let out = individually_requested(r.userinfo.keys(), user.as_object().unwrap());
        assert_eq!(Value::Object(out), json!({"email": "a@example.com"}));
    }
}
