//! Signed request objects (JAR, RFC 9101) and their FAPI rules, and the JWT-secured
//! authorization response (JARM, in [`crate::response`]).

use crate::authz::Params;
use crate::client::Client;
use crate::client_auth::check_not_from_future;
use crate::error::{ErrorCode, OAuthError, OAuthResult};
use crate::jose::{JwtKind, ParsedJws, check_explicit_type};
use crate::policy::ResponseType;
use serde_json::{Map, Value};

/// RFC 9101 §10.8 media type of request objects.
pub const REQUEST_OBJECT_TYP: &str = "oauth-authz-req+jwt";
/// F1A-5.2.2-13 / F2MS: the longest `exp - nbf`, and the oldest `nbf`, in seconds.
pub const MAX_REQUEST_OBJECT_LIFETIME: i64 = 3600;

fn invalid(d: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRequestObject, d)
}

/// The checks of a request object whose signature the caller verified with the client's
/// keys: algorithm, `typ`, `iss`, `aud`, `exp`, `nbf` (required, at most 60 minutes old,
/// `exp - nbf` at most 60 minutes), future `iat`/`nbf` within the skew, `client_id` and
/// `response_type` agreeing with the outer request. Returns the parameters inside the
/// object — the only ones used (F1A-5.2.2-10, R9126-3).
pub fn check_request_object(
    jws: &ParsedJws,
    client: &Client,
    issuer: &str,
    now: i64,
    outer: &Params,
) -> OAuthResult<Params> {
    if !client.accepts_alg(jws.alg, client.request_object_alg) {
        return Err(invalid("the request object algorithm is not allowed"));
    }
    // RFC 9101 §10.8, RFC 8725 §3.11.
    check_explicit_type(jws.header_str("typ"), JwtKind::RequestObject)
        .map_err(|_| invalid("the request object typ is not oauth-authz-req+jwt"))?;
    if jws.claim_str("iss") != Some(client.client_id.as_str()) {
        return Err(invalid("the request object iss must be the client_id"));
    }
    let aud_ok = match jws.claims.get("aud") {
        Some(Value::String(a)) => a == issuer,
        Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(issuer)),
        _ => false,
    };
    if !aud_ok {
        return Err(invalid("the request object aud must be the issuer"));
    }
    let exp = jws.claim_i64("exp").ok_or_else(|| invalid("the request object has no exp"))?;
    let nbf = jws.claim_i64("nbf").ok_or_else(|| invalid("the request object has no nbf"))?;
    if exp <= now {
        return Err(invalid("the request object has expired"));
    }
    if nbf < now - MAX_REQUEST_OBJECT_LIFETIME {
        return Err(invalid("the request object nbf is more than 60 minutes old"));
    }
    if exp - nbf > MAX_REQUEST_OBJECT_LIFETIME {
        return Err(invalid("the request object lives longer than 60 minutes"));
    }
    check_not_from_future(jws, now, client.policy().max_future_skew).map_err(invalid)?;
    if jws.claims.contains_key("request") || jws.claims.contains_key("request_uri") {
        return Err(invalid("a request object must not contain request or request_uri"));
    }
    if jws.claim_str("client_id") != Some(client.client_id.as_str()) {
        return Err(invalid("the request object client_id must be the client"));
    }
    if let Some(outer_id) = outer.get("client_id")
        && outer_id != &client.client_id
    {
        return Err(OAuthError::invalid_request("client_id does not match the request object"));
    }
    if let Some(outer_rt) = outer.get("response_type") {
        let inner = jws.claim_str("response_type").and_then(ResponseType::parse);
        if inner.is_none() || inner != ResponseType::parse(outer_rt) {
            return Err(OAuthError::invalid_request("response_type does not match the request object"));
        }
    }
    Ok(params_from_claims(&jws.claims))
}

/// Request-object claims as authorization parameters: strings as they are, numbers as
/// decimal, objects and arrays as JSON text. Registered JWT claims are not parameters.
pub fn params_from_claims(claims: &Map<String, Value>) -> Params {
    claims
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "iss" | "aud" | "exp" | "nbf" | "iat" | "jti"))
        .filter_map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => return None,
                other => other.to_string(),
            };
            Some((k.clone(), s))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{ClientMetadata, validate_client_metadata};
    use crate::jose::{JwsAlg, LocalSigningKey, sign_with_header};
    use serde_json::json;

    const ISS: &str = "https://as.example";
    const NOW: i64 = 1_800_000_000;

    fn setup() -> (LocalSigningKey, Client) {
        let (k, _) = LocalSigningKey::generate("k", JwsAlg::PS256).unwrap();
        let m: ClientMetadata = serde_json::from_value(
            json!({"profile": "fapi1-advanced", "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [k.public_jwk()]}, "redirect_uris": ["https://c.example/cb"]}),
        )
        .unwrap();
        (k, validate_client_metadata(m, "c1".into(), &crate::client_rules::ClientRules::default()).unwrap())
    }

    fn claims() -> Value {
        json!({"iss": "c1", "aud": ISS, "client_id": "c1", "response_type": "code id_token", "redirect_uri": "https://c.example/cb",
               "scope": "openid accounts", "nonce": "n", "state": "s", "exp": NOW + 300, "nbf": NOW, "max_age": 60})
    }

    fn ro(k: &LocalSigningKey, claims: &Value) -> ParsedJws {
        let t = sign_with_header(k, &json!({"alg": "PS256", "typ": REQUEST_OBJECT_TYP}), claims).unwrap();
        ParsedJws::parse(&t, 16384).unwrap()
    }

    fn outer() -> Params {
        [("client_id", "c1"), ("response_type", "code id_token"), ("scope", "openid accounts payments")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// F1A-5.2.2-10: only the object's parameters are used.
    #[test]
    fn valid_object_yields_its_own_parameters() {
        let (k, c) = setup();
        let p = check_request_object(&ro(&k, &claims()), &c, ISS, NOW, &outer()).unwrap();
        assert_eq!(p.get("scope").map(String::as_str), Some("openid accounts"));
        assert_eq!(p.get("max_age").map(String::as_str), Some("60"));
        assert!(!p.contains_key("exp") && !p.contains_key("iss"));
    }

    /// The FAPI request-object time and audience rules (issue 5 tests list).
    #[test]
    fn refusals() {
        let (k, c) = setup();
        let cases: Vec<(&str, Value)> = vec![
            ("exp", Value::Null),
            ("nbf", Value::Null),
            ("nbf", json!(NOW - 3660)),
            ("exp", json!(NOW + 3661)),
            ("aud", json!("https://other.example")),
            ("aud", json!(["https://other.example"])),
            ("iss", json!("c2")),
            ("client_id", json!("c2")),
            ("response_type", json!("code")),
            ("iat", json!(NOW + 61)),
            ("request_uri", json!("urn:x")),
        ];
        for (claim, v) in cases {
            let mut cl = claims();
            if v.is_null() {
                cl.as_object_mut().unwrap().remove(claim);
            } else {
                cl[claim] = v.clone();
            }
            assert!(check_request_object(&ro(&k, &cl), &c, ISS, NOW, &outer()).is_err(), "{claim}={v}");
        }
        let mut cl = claims();
        cl["aud"] = json!(["x", ISS]);
        assert!(check_request_object(&ro(&k, &cl), &c, ISS, NOW, &outer()).is_ok());
        let mut o = outer();
        o.insert("client_id".into(), "c2".into());
        assert!(check_request_object(&ro(&k, &claims()), &c, ISS, NOW, &o).is_err());
    }

    /// F1A-8.6-1/2/3: RS256 and EdDSA are not FAPI 1.0 request-object algorithms.
    #[test]
    fn algorithm_outside_profile_is_refused() {
        let (_, c) = setup();
        let (rsa, _) = LocalSigningKey::generate("r", JwsAlg::RS256).unwrap();
        let t = sign_with_header(&rsa, &json!({"alg": "RS256"}), &claims()).unwrap();
        let err = check_request_object(&ParsedJws::parse(&t, 16384).unwrap(), &c, ISS, NOW, &outer()).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequestObject);
    }
}
