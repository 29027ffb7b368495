//! Client authentication (one module for the PAR, token, introspection, revocation and
//! registration endpoints): what credentials a request carries, and the rules a
//! `private_key_jwt` assertion must pass. Certificate rules live in [`crate::mtls`].

use crate::client::Client;
use crate::error::{OAuthError, OAuthResult};
use crate::jose::{JwtKind, ParsedJws, check_explicit_type};
use crate::policy::{AssertionAudience, AuthMethod, Policy};
use base64::Engine;
use serde_json::Value;

/// RFC 7523 §2.2 assertion type.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The credentials a request presented, before they are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresentedCredentials {
    /// `client_assertion` (+ optional `client_id`).
    Assertion {
        /// The `client_id` form parameter, if sent.
        client_id: Option<String>,
        /// The compact JWT.
        assertion: String,
    },
    /// A client secret, in the Authorization header (`basic`) or the body.
    Secret {
        /// The client.
        client_id: String,
        /// The secret.
        secret: String,
        /// Sent with HTTP Basic.
        basic: bool,
    },
    /// Only `client_id`: mTLS methods (the certificate is the credential).
    ClientId(String),
    /// Nothing at all.
    None,
}

impl PresentedCredentials {
    /// Whether the client used the Authorization header: RFC 6749 §5.2 then requires 401
    /// with `WWW-Authenticate` for `invalid_client`.
    pub fn used_authorization_header(&self) -> bool {
        matches!(self, PresentedCredentials::Secret { basic: true, .. })
    }
}

/// Form fields relevant to client authentication.
#[derive(Debug, Default, Clone)]
pub struct AuthFields<'a> {
    /// `client_id`.
    pub client_id: Option<&'a str>,
    /// `client_secret`.
    pub client_secret: Option<&'a str>,
    /// `client_assertion`.
    pub client_assertion: Option<&'a str>,
    /// `client_assertion_type`.
    pub client_assertion_type: Option<&'a str>,
    /// The `Authorization` header value.
    pub authorization: Option<&'a str>,
}

/// Sorts out which credentials a request carries. More than one method at once is
/// refused (RFC 6749 §2.3); a wrong `client_assertion_type` is `invalid_client`
/// (OIDC-9-claims).
pub fn presented_credentials(f: &AuthFields<'_>) -> OAuthResult<PresentedCredentials> {
    let basic = match f.authorization {
        // `get`, not slicing: a header with a multi-byte character near the start must not
        // panic (found by the form_and_credentials fuzz target).
        Some(h) if h.len() > 6 && h.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("basic ")) => {
            Some(parse_basic(h.get(6..).unwrap_or_default())?)
        }
        _ => None,
    };
    let methods =
        [basic.is_some(), f.client_secret.is_some(), f.client_assertion.is_some()].iter().filter(|b| **b).count();
    if methods > 1 {
        return Err(OAuthError::invalid_request("more than one client authentication method was used"));
    }
    if let Some((id, secret)) = basic {
        if f.client_id.is_some_and(|c| c != id) {
            return Err(OAuthError::invalid_client("client_id does not match the Authorization header"));
        }
        return Ok(PresentedCredentials::Secret { client_id: id, secret, basic: true });
    }
    if let Some(assertion) = f.client_assertion {
        if f.client_assertion_type != Some(JWT_BEARER) {
            return Err(OAuthError::invalid_client("client_assertion_type must be jwt-bearer"));
        }
        return Ok(PresentedCredentials::Assertion {
            client_id: f.client_id.map(str::to_string),
            assertion: assertion.to_string(),
        });
    }
    match (f.client_id, f.client_secret) {
        (Some(id), Some(secret)) => {
            Ok(PresentedCredentials::Secret { client_id: id.into(), secret: secret.into(), basic: false })
        }
        (Some(id), None) => Ok(PresentedCredentials::ClientId(id.into())),
        (None, Some(_)) => Err(OAuthError::invalid_client("client_secret without client_id")),
        (None, None) => Ok(PresentedCredentials::None),
    }
}

/// RFC 6749 §2.3.1: `Basic base64(urlencode(id):urlencode(secret))`.
fn parse_basic(b64: &str) -> OAuthResult<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| OAuthError::invalid_client("malformed Authorization header"))?;
    let s = String::from_utf8(raw).map_err(|_| OAuthError::invalid_client("malformed Authorization header"))?;
    let (id, secret) = s.split_once(':').ok_or_else(|| OAuthError::invalid_client("malformed Authorization header"))?;
    let dec = |v: &str| {
        percent_encoding::percent_decode_str(&v.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| OAuthError::invalid_client("malformed Authorization header"))
    };
    Ok((dec(id)?, dec(secret)?))
}

/// The `client_id` a request claims, from whichever credential carries it. For an
/// assertion this is its (not yet verified) `sub`; a different `client_id` parameter is
/// refused (F1B-5.2.2-19).
pub fn claimed_client_id(creds: &PresentedCredentials, assertion: Option<&ParsedJws>) -> OAuthResult<String> {
    match creds {
        PresentedCredentials::Assertion { client_id, .. } => {
            let sub = assertion
                .and_then(|a| a.claim_str("sub"))
                .ok_or_else(|| OAuthError::invalid_client("client assertion has no sub"))?;
            if client_id.as_deref().is_some_and(|c| c != sub) {
                return Err(OAuthError::invalid_client("client_id does not match the client assertion"));
            }
            Ok(sub.to_string())
        }
        PresentedCredentials::Secret { client_id, .. } | PresentedCredentials::ClientId(client_id) => {
            Ok(client_id.clone())
        }
        PresentedCredentials::None => Err(OAuthError::invalid_client("client authentication is required")),
    }
}

/// A client may authenticate only with the method it registered (issue 3; F2SP-5.3.2.1-6).
pub fn check_method_matches(creds: &PresentedCredentials, client: &Client) -> OAuthResult<()> {
    let ok = match (creds, client.auth_method) {
        (PresentedCredentials::Assertion { .. }, AuthMethod::PrivateKeyJwt) => true,
        (PresentedCredentials::ClientId(_), m) => m.is_mtls(),
        (PresentedCredentials::Secret { basic: true, .. }, AuthMethod::ClientSecretBasic) => true,
        (PresentedCredentials::Secret { basic: false, .. }, AuthMethod::ClientSecretPost) => true,
        _ => false,
    };
    if ok && client.policy().allows_auth_method(client.auth_method) {
        Ok(())
    } else {
        Err(OAuthError::invalid_client("the client must authenticate with its registered method"))
    }
}

/// Where an assertion was received, so its audience can be judged.
#[derive(Debug, Clone)]
pub struct AssertionContext<'a> {
    /// The issuer identifier.
    pub issuer: &'a str,
    /// The token endpoint URLs (public and mTLS alias).
    pub token_endpoints: &'a [String],
    /// The URLs of the endpoint that received the assertion (public and mTLS alias).
    pub receiving_endpoints: &'a [String],
    /// Current time.
    pub now: i64,
}

/// F2SP-5.3.2.1-8: a FAPI 2.0 client assertion's `aud` must be the issuer, as a plain
/// string — no array, no endpoint URL. Other profiles also accept the token endpoint URL
/// and the URL of the receiving endpoint, as a string or in an array (OIDC Core §9,
/// RFC 9126 §2).
pub fn check_assertion_audience(aud: Option<&Value>, ctx: &AssertionContext<'_>, policy: &Policy) -> OAuthResult<()> {
    let refuse = || OAuthError::invalid_client("client assertion audience is not accepted");
    match policy.assertion_audience {
        AssertionAudience::IssuerStringOnly => match aud {
            Some(Value::String(s)) if s == ctx.issuer => Ok(()),
            _ => Err(refuse()),
        },
        AssertionAudience::IssuerOrEndpoint => {
            let accepted = |s: &str| {
                s == ctx.issuer
                    || ctx.token_endpoints.iter().any(|e| e == s)
                    || ctx.receiving_endpoints.iter().any(|e| e == s)
            };
            match aud {
                Some(Value::String(s)) if accepted(s) => Ok(()),
                Some(Value::Array(items)) if items.iter().any(|v| v.as_str().is_some_and(accepted)) => Ok(()),
                _ => Err(refuse()),
            }
        }
    }
}

/// F2SP-5.3.2.1-13: `iat` and `nbf` may lie at most `max_future_skew` seconds in the
/// future. Returns a description of the failure for the caller's error code.
pub fn check_not_from_future(jws: &ParsedJws, now: i64, max_future_skew: i64) -> Result<(), &'static str> {
    for claim in ["iat", "nbf"] {
        if jws.claims.contains_key(claim) {
            let t = jws.claim_i64(claim).ok_or("iat/nbf must be numeric")?;
            if t > now + max_future_skew {
                return Err("iat/nbf is in the future");
            }
        }
    }
    Ok(())
}

/// A checked assertion's replay key: the `jti` and when it may be forgotten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionReplayKey {
    /// The assertion's `jti`.
    pub jti: String,
    /// Its `exp`: after that the assertion is refused anyway.
    pub expires_at: i64,
}

/// Claims that define an authorization request (RFC 6749 §4.1.1, RFC 7636, RFC 9101): a
/// client assertion never carries them, a request object always carries `response_type`.
const AUTHORIZATION_REQUEST_CLAIMS: &[&str] = &["response_type", "redirect_uri", "code_challenge"];

/// RFC 8725 §3.11 (issue 12 point 5): a client assertion is explicitly a client assertion.
/// Its `typ` must not name another kind of JWT, and — because FAPI 1.0 request objects may
/// be untyped — it must not carry the claims of an authorization request, so a signed
/// request object that happens to have `sub` and `jti` is never a client credential
/// (mutually exclusive validation rules for the two kinds).
pub fn check_assertion_kind(jws: &ParsedJws) -> OAuthResult<()> {
    check_explicit_type(jws.header_str("typ"), JwtKind::ClientAssertion)
        .map_err(|_| OAuthError::invalid_client("the client assertion typ is not a client assertion"))?;
    if AUTHORIZATION_REQUEST_CLAIMS.iter().any(|c| jws.claims.contains_key(*c)) {
        return Err(OAuthError::invalid_client("a request object is not a client assertion"));
    }
    Ok(())
}

/// Longest lifetime accepted for a client assertion (RFC 7523 §3 lets the server refuse
/// an `exp` unreasonably far ahead; it also bounds how long `jti`s are kept).
pub const MAX_ASSERTION_LIFETIME: i64 = 3600;

/// OIDC-9-claims, R7523-3-exp, F2SP-5.3.2.1-13(assert), F2SP-5.4.1-alg(assert),
/// F2SP-5.3.2.1-8: the claims of a `private_key_jwt` assertion whose signature the caller
/// has verified with the client's keys. The caller then records the `jti` atomically
/// (OIDC-9-jti).
pub fn check_client_assertion(
    jws: &ParsedJws,
    client: &Client,
    ctx: &AssertionContext<'_>,
) -> OAuthResult<AssertionReplayKey> {
    let policy = client.policy();
    if !client.accepts_alg(jws.alg, client.assertion_alg) {
        return Err(OAuthError::invalid_client("client assertion algorithm is not allowed"));
    }
    check_assertion_kind(jws)?;
    if jws.claim_str("iss") != Some(client.client_id.as_str())
        || jws.claim_str("sub") != Some(client.client_id.as_str())
    {
        return Err(OAuthError::invalid_client("client assertion iss and sub must be the client_id"));
    }
    check_assertion_audience(jws.claims.get("aud"), ctx, policy)?;
    let exp = jws.claim_i64("exp").ok_or_else(|| OAuthError::invalid_client("client assertion has no exp"))?;
    if exp <= ctx.now {
        return Err(OAuthError::invalid_client("client assertion has expired"));
    }
    if exp > ctx.now + MAX_ASSERTION_LIFETIME {
        return Err(OAuthError::invalid_client("client assertion lives too long"));
    }
    check_not_from_future(jws, ctx.now, policy.max_future_skew).map_err(OAuthError::invalid_client)?;
    let jti = jws
        .claim_str("jti")
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| OAuthError::invalid_client("client assertion has no jti"))?;
    Ok(AssertionReplayKey { jti: jti.to_string(), expires_at: exp })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12 point 10, fuzz finding: a non-ASCII Authorization value is refused or ignored,
    /// never a panic.
    #[test]
    fn non_ascii_authorization_header_does_not_panic() {
        for h in ["Ba\u{fffd}\u{fffd}x", "Basic\u{e9}abc", "\u{e9}\u{e9}\u{e9}\u{e9}"] {
            let f = AuthFields { client_id: Some("c"), authorization: Some(h), ..AuthFields::default() };
            let _ = presented_credentials(&f);
        }
    }
    use crate::client::{ClientMetadata, validate_client_metadata};
    use crate::error::ErrorCode;
    use crate::jose::{JwsAlg, JwsSigner, LocalSigningKey};
    use serde_json::json;

    const ISS: &str = "https://as.example";
    const NOW: i64 = 1_800_000_000;

    fn client(profile: &str, key: &LocalSigningKey) -> Client {
        let m: ClientMetadata =
            serde_json::from_value(json!({"profile": profile, "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.public_jwk()]}, "redirect_uris": ["https://c.example/cb"]}))
            .unwrap();
        validate_client_metadata(m, "c1".into(), &crate::client_rules::ClientRules::default()).unwrap()
    }

    fn ctx<'a>(token: &'a [String], recv: &'a [String]) -> AssertionContext<'a> {
        AssertionContext { issuer: ISS, token_endpoints: token, receiving_endpoints: recv, now: NOW }
    }

    fn assertion(key: &LocalSigningKey, claims: Value) -> ParsedJws {
        ParsedJws::parse(&key.sign(None, &claims).unwrap(), 16_384).unwrap()
    }

    fn good_claims() -> Value {
        json!({"iss": "c1", "sub": "c1", "aud": ISS, "exp": NOW + 60, "iat": NOW, "jti": "j1"})
    }

    /// F2SP-5.3.2.1-8 / F2SP-drafts-aud: only the issuer as a string for FAPI 2.0.
    #[test]
    fn fapi2_audience_is_issuer_string_only() {
        let (key, _) = LocalSigningKey::generate("k", JwsAlg::ES256).unwrap();
        let c = client("fapi2-security", &key);
        let tok = vec!["https://as.example/token".to_string()];
        let par = vec!["https://as.example/par".to_string()];
        let cx = ctx(&tok, &par);
        assert!(check_client_assertion(&assertion(&key, good_claims()), &c, &cx).is_ok());
        for aud in [
            json!([ISS]),
            json!("https://as.example/token"),
            json!("https://as.example/par"),
            json!(null),
            json!("https://as.example/"),
        ] {
            let mut cl = good_claims();
            cl["aud"] = aud.clone();
            let err = check_client_assertion(&assertion(&key, cl), &c, &cx).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidClient, "{aud}");
        }
    }

    /// R9126-2-aud: FAPI 1.0 clients may use the issuer, token endpoint or PAR URL.
    #[test]
    fn fapi1_audience_accepts_endpoint_urls() {
        let (key, _) = LocalSigningKey::generate("k", JwsAlg::PS256).unwrap();
        let c = client("fapi1-advanced", &key);
        let tok = vec!["https://as.example/token".to_string()];
        let par = vec!["https://as.example/par".to_string()];
        let cx = ctx(&tok, &par);
        for aud in [json!(ISS), json!([ISS]), json!("https://as.example/token"), json!(["x", "https://as.example/par"])]
        {
            let mut cl = good_claims();
            cl["aud"] = aud.clone();
            assert!(check_client_assertion(&assertion(&key, cl), &c, &cx).is_ok(), "{aud}");
        }
        let mut cl = good_claims();
        cl["aud"] = json!("https://evil.example");
        assert!(check_client_assertion(&assertion(&key, cl), &c, &cx).is_err());
    }

    /// OIDC-9-claims, R7523-3-exp, F2SP-5.3.2.1-13(assert).
    #[test]
    fn claim_rules() {
        let (key, _) = LocalSigningKey::generate("k", JwsAlg::ES256).unwrap();
        let c = client("fapi2-security", &key);
        let cx = ctx(&[], &[]);
        let cases: Vec<(&str, Value)> = vec![
            ("sub", json!("other")),
            ("iss", json!("other")),
            ("exp", json!(NOW - 1)),
            ("exp", json!(NOW + 7200)),
            ("iat", json!(NOW + 11)),
            ("nbf", json!(NOW + 61)),
            ("jti", json!("")),
        ];
        for (claim, value) in cases {
            let mut cl = good_claims();
            cl[claim] = value.clone();
            let err = check_client_assertion(&assertion(&key, cl), &c, &cx).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidClient, "{claim}={value}");
        }
        for missing in ["exp", "jti"] {
            let mut cl = good_claims();
            cl.as_object_mut().unwrap().remove(missing);
            assert!(check_client_assertion(&assertion(&key, cl), &c, &cx).is_err(), "{missing}");
        }
        let mut cl = good_claims();
        cl["iat"] = json!(NOW + 10);
        let key_out = check_client_assertion(&assertion(&key, cl), &c, &cx).unwrap();
        assert_eq!(key_out, AssertionReplayKey { jti: "j1".into(), expires_at: NOW + 60 });
    }

    /// F2SP-5.4.1-alg(assert): an algorithm the client's profile forbids is refused.
    #[test]
    fn rs256_assertion_refused_for_fapi() {
        let (key, _) = LocalSigningKey::generate("k", JwsAlg::RS256).unwrap();
        let (es, _) = LocalSigningKey::generate("e", JwsAlg::ES256).unwrap();
        let c = client("fapi2-security", &es);
        let err = check_client_assertion(&assertion(&key, good_claims()), &c, &ctx(&[], &[])).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidClient);
    }

    #[test]
    fn credentials_extraction() {
        let f = AuthFields {
            client_id: Some("a"),
            client_assertion: Some("x.y.z"),
            client_assertion_type: Some(JWT_BEARER),
            ..Default::default()
        };
        assert!(matches!(presented_credentials(&f).unwrap(), PresentedCredentials::Assertion { .. }));
        let f = AuthFields {
            client_assertion: Some("x.y.z"),
            client_assertion_type: Some("urn:other"),
            ..Default::default()
        };
        assert_eq!(presented_credentials(&f).unwrap_err().code, ErrorCode::InvalidClient);
        let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("my%20id:s%3Acret"));
        let f = AuthFields { authorization: Some(&basic), ..Default::default() };
        let creds = presented_credentials(&f).unwrap();
        assert_eq!(
            creds,
            PresentedCredentials::Secret { client_id: "my id".into(), secret: "s:cret".into(), basic: true }
        );
        assert!(creds.used_authorization_header());
        let f = AuthFields {
            authorization: Some(&basic),
            client_assertion: Some("a"),
            client_assertion_type: Some(JWT_BEARER),
            ..Default::default()
        };
        assert_eq!(presented_credentials(&f).unwrap_err().code, ErrorCode::InvalidRequest);
        assert_eq!(presented_credentials(&AuthFields::default()).unwrap(), PresentedCredentials::None);
    }

    /// F1B-5.2.2-19: a client_id that differs from the assertion's subject is refused.
    #[test]
    fn client_id_must_agree_with_assertion() {
        let (key, _) = LocalSigningKey::generate("k", JwsAlg::ES256).unwrap();
        let a = assertion(&key, good_claims());
        let creds = PresentedCredentials::Assertion { client_id: Some("c2".into()), assertion: String::new() };
        assert_eq!(claimed_client_id(&creds, Some(&a)).unwrap_err().code, ErrorCode::InvalidClient);
        let creds = PresentedCredentials::Assertion { client_id: Some("c1".into()), assertion: String::new() };
        assert_eq!(claimed_client_id(&creds, Some(&a)).unwrap(), "c1");
    }

    #[test]
    fn registered_method_only() {
        let (key, _) = LocalSigningKey::generate("k", JwsAlg::ES256).unwrap();
        let c = client("fapi2-security", &key);
        assert!(check_method_matches(&PresentedCredentials::ClientId("c1".into()), &c).is_err());
        assert!(
            check_method_matches(
                &PresentedCredentials::Secret { client_id: "c1".into(), secret: "s".into(), basic: true },
                &c
            )
            .is_err()
        );
        assert!(
            check_method_matches(&PresentedCredentials::Assertion { client_id: None, assertion: String::new() }, &c)
                .is_ok()
        );
    }
}
