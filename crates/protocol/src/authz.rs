//! The authorization request (pushed or by value) and the authorization response.

use crate::claims_request::{ClaimsRequest, PASSWORD_ACR, check_essential_acr, parse_claims_request};
use crate::client::Client;
use crate::error::{ErrorCode, OAuthError, OAuthResult};
use crate::pkce;
use crate::policy::{ResponseMode, ResponseType};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest `state` accepted (F2SP-5.3.2.2-note4: ecosystems put JWTs in it).
pub const MAX_STATE_LEN: usize = 8192;
/// Longest `nonce` accepted (F2SP-5.3.2.2-14: at least 64 must work).
pub const MAX_NONCE_LEN: usize = 512;

/// A validated authorization request, as stored with a pushed request or code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    /// The client.
    pub client_id: String,
    /// `response_type` (wire form).
    pub response_type: String,
    /// `response_mode`, if asked.
    pub response_mode: Option<String>,
    /// Exact redirect URI.
    pub redirect_uri: String,
    /// Requested scope, space separated.
    pub scope: String,
    /// `state`.
    pub state: Option<String>,
    /// `nonce`.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// RFC 9449 §10 key binding for the code.
    pub dpop_jkt: Option<String>,
    /// `prompt` values.
    pub prompt: Vec<String>,
    /// `max_age` in seconds.
    pub max_age: Option<i64>,
    /// `acr_values`.
    pub acr_values: Vec<String>,
    /// The OIDC `claims` parameter (OIDC-5.5), parsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<ClaimsRequest>,
}

impl AuthorizationRequest {
    /// Parsed response type.
    pub fn response_type(&self) -> Option<ResponseType> {
        ResponseType::parse(&self.response_type)
    }
    /// The effective response mode: asked, or the default for the response type.
    pub fn effective_mode(&self) -> ResponseMode {
        let default = ResponseMode::default_for(self.response_type().unwrap_or(ResponseType::Code));
        self.response_mode.as_deref().and_then(ResponseMode::parse).unwrap_or(default)
    }
    /// Whether `openid` was asked for.
    pub fn is_openid(&self) -> bool {
        self.scope.split(' ').any(|s| s == "openid")
    }
}

/// Parameters of an authorization request, by name (form or query or request object).
pub type Params = BTreeMap<String, String>;

/// The redirect target of a request, once the client and redirect URI can be trusted.
/// Before that, errors are shown on a page and never redirected (R6749-4.1.2.1,
/// F2SP-5.3.2.1-7).
pub fn trusted_redirect_uri<'a>(params: &'a Params, client: &Client) -> Option<&'a str> {
    params.get("redirect_uri").map(String::as_str).filter(|r| client.has_redirect_uri(r))
}

/// Validates an authorization request's parameters for this client (R9126-4-validate):
/// response type (F2SP-5.3.2.2-1, F1A-5.2.2-2), response mode, exact registered
/// `redirect_uri` (F2SP-5.3.2.2-6, F1B-5.2.2-8/9/10), scope, PKCE S256 (F2SP-5.3.2.2-5,
/// F1A-5.2.2-18), nonce/state (F1B-5.2.2.2/3, OIDC-3.3.2.11-nonce), lengths
/// (F2SP-5.3.2.2-note4, F2SP-5.3.2.2-14), prompt and max_age (OIDC Core §3.1.2.1).
pub fn validate_authorization_request(
    params: &Params,
    client: &Client,
    pushed: bool,
) -> OAuthResult<AuthorizationRequest> {
    let policy = client.policy();
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if let Some(cid) = get("client_id")
        && cid != client.client_id
    {
        return Err(OAuthError::invalid_request("client_id does not match the authenticated client"));
    }
    if params.contains_key("authorization_details") {
        return Err(OAuthError::invalid_request("authorization_details is not supported"));
    }
    let redirect_uri = get("redirect_uri").ok_or_else(|| OAuthError::invalid_request("redirect_uri is required"))?;
    if !client.has_redirect_uri(redirect_uri) {
        return Err(OAuthError::invalid_request("redirect_uri is not registered for this client"));
    }
    let rt_raw = get("response_type").ok_or_else(|| OAuthError::invalid_request("response_type is required"))?;
    let rt = ResponseType::parse(rt_raw)
        .filter(|rt| policy.allows_response_type(*rt) && client.response_types.contains(rt))
        .ok_or_else(|| {
            OAuthError::new(ErrorCode::UnsupportedResponseType, "response_type is not allowed for this client")
        })?;
    let mode = match get("response_mode") {
        None => None,
        Some(m) => Some(
            ResponseMode::parse(m)
                .filter(|m| policy.response_modes.contains(m))
                .ok_or_else(|| OAuthError::invalid_request("response_mode is not allowed for this client"))?,
        ),
    };
    // F2MS-5.3.3: only the response modes the client registered, when it registered any.
    if let Some(registered) = &client.response_modes {
        let effective = mode.unwrap_or(ResponseMode::default_for(rt));
        if !registered.contains(&effective) {
            return Err(OAuthError::invalid_request("response_mode is not one the client registered"));
        }
    }
    if rt == ResponseType::Code && policy.code_requires_jarm && !mode.is_some_and(ResponseMode::is_jwt) {
        return Err(OAuthError::invalid_request("response_type code requires response_mode jwt for this client"));
    }
    if rt == ResponseType::CodeIdToken && matches!(mode, Some(ResponseMode::Query | ResponseMode::QueryJwt)) {
        return Err(OAuthError::invalid_request("the hybrid flow must not use a query response mode"));
    }
    let scope = get("scope").unwrap_or("");
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        if !client.scopes.iter().any(|c| c == s) {
            return Err(OAuthError::invalid_scope("a requested scope is not allowed for this client"));
        }
    }
    let state = get("state");
    if state.is_some_and(|s| s.len() > MAX_STATE_LEN) {
        return Err(OAuthError::invalid_request("state is too long"));
    }
    let nonce = get("nonce");
    if nonce.is_some_and(|n| n.len() > MAX_NONCE_LEN) {
        return Err(OAuthError::invalid_request("nonce is too long"));
    }
    let openid = scope.split(' ').any(|s| s == "openid");
    check_openid_for_id_token(rt, openid)?;
    if (rt == ResponseType::CodeIdToken || (policy.nonce_or_state_required && openid)) && nonce.is_none() {
        return Err(OAuthError::invalid_request("nonce is required"));
    }
    if policy.nonce_or_state_required && !openid && state.is_none() {
        return Err(OAuthError::invalid_request("state is required when openid is not requested"));
    }
    let pkce_required = policy.pkce_required || (pushed && policy.pkce_required_with_par);
    let code_challenge = pkce::check_challenge(get("code_challenge"), get("code_challenge_method"), pkce_required)?;
    let prompt: Vec<String> =
        get("prompt").unwrap_or("").split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect();
    for p in &prompt {
        if !matches!(p.as_str(), "none" | "login" | "consent" | "select_account") {
            return Err(OAuthError::invalid_request("unknown prompt value"));
        }
    }
    if prompt.iter().any(|p| p == "none") && prompt.len() > 1 {
        return Err(OAuthError::invalid_request("prompt=none cannot be combined with other values"));
    }
    let max_age = match get("max_age") {
        None => None,
        Some(v) => Some(
            v.parse::<i64>()
                .ok()
                .filter(|m| *m >= 0)
                .ok_or_else(|| OAuthError::invalid_request("max_age must be a non-negative integer"))?,
        ),
    };
    // OIDC-5.5, OIDC-5.5.1.1: the claims asked for individually; an essential acr we cannot
    // assert fails the request before anyone signs in.
    let claims = get("claims").map(parse_claims_request).transpose()?;
    check_essential_acr(claims.as_ref(), PASSWORD_ACR)?;
    let dpop_jkt = get("dpop_jkt").map(str::to_string);
    if dpop_jkt.as_deref().is_some_and(|j| j.len() != 43) {
        return Err(OAuthError::invalid_request("dpop_jkt is not a SHA-256 JWK thumbprint"));
    }
    Ok(AuthorizationRequest {
        client_id: client.client_id.clone(),
        response_type: rt.as_str().to_string(),
        response_mode: mode.map(|m| m.as_str().to_string()),
        redirect_uri: redirect_uri.to_string(),
        scope: scope.split(' ').filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" "),
        state: state.map(str::to_string),
        nonce: nonce.map(str::to_string),
        code_challenge,
        dpop_jkt,
        prompt,
        max_age,
        acr_values: get("acr_values").unwrap_or("").split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect(),
        claims,
    })
}

/// OIDC Core 3.3.2.1 (issue 10 point 4): a response type that returns an ID token from the
/// authorization endpoint (`code id_token`) needs the `openid` scope, since an ID token is
/// only ever issued for an OpenID Connect request.
pub fn check_openid_for_id_token(rt: ResponseType, openid: bool) -> OAuthResult<()> {
    if rt == ResponseType::CodeIdToken && !openid {
        return Err(OAuthError::invalid_request("response_type code id_token requires the openid scope"));
    }
    Ok(())
}

/// R9449-10.1: the `dpop_jkt` parameter and a DPoP proof on the PAR request must agree;
/// either one binds the code.
pub fn reconcile_dpop_jkt(param: Option<&str>, proof_jkt: Option<&str>) -> OAuthResult<Option<String>> {
    match (param, proof_jkt) {
        (Some(a), Some(b)) if a != b => {
            Err(OAuthError::invalid_dpop_proof("dpop_jkt does not match the DPoP proof key"))
        }
        (Some(a), _) => Ok(Some(a.to_string())),
        (None, Some(b)) => Ok(Some(b.to_string())),
        (None, None) => Ok(None),
    }
}

/// Whether the user must sign in again: `prompt=login`, or an older authentication than
/// `max_age` allows (OIDC Core §3.1.2.1).
pub fn needs_fresh_login(req: &AuthorizationRequest, auth_time: Option<i64>, now: i64) -> bool {
    match auth_time {
        None => true,
        Some(t) => req.prompt.iter().any(|p| p == "login") || req.max_age.is_some_and(|m| now - t > m),
    }
}

/// RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6 (issue 10, point 1): the user cancelled at the
/// login page or denied at the consent page. Both end the request with `access_denied`,
/// delivered to the client like any authorization response (with `state` and `iss`).
pub fn refused_by_user() -> OAuthError {
    OAuthError::new(ErrorCode::AccessDenied, "the user declined the request")
}

/// Builds a redirect to the client with parameters in the query or the fragment,
/// appending to any query the registered URI already has.
pub fn redirect_with(redirect_uri: &str, in_fragment: bool, params: &[(&str, &str)]) -> String {
    let encoded = serde_urlencoded_pairs(params);
    if in_fragment {
        format!("{redirect_uri}#{encoded}")
    } else if redirect_uri.contains('?') {
        format!("{redirect_uri}&{encoded}")
    } else {
        format!("{redirect_uri}?{encoded}")
    }
}

fn serde_urlencoded_pairs(params: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{ClientMetadata, validate_client_metadata};
    use crate::jose::{JwsAlg, LocalSigningKey};
    use serde_json::json;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn client(profile: &str) -> Client {
        let (k, _) = LocalSigningKey::generate("k", JwsAlg::ES256).unwrap();
        let m: ClientMetadata =
            serde_json::from_value(json!({"profile": profile, "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [k.public_jwk()]}, "redirect_uris": ["https://c.example/cb"],
            "scope": "openid profile email offline_access accounts payments"}))
            .unwrap();
        validate_client_metadata(m, "c1".into(), &crate::client_rules::ClientRules::default()).unwrap()
    }

    fn params(extra: &[(&str, &str)]) -> Params {
        let mut p: Params = [
            ("response_type", "code"),
            ("client_id", "c1"),
            ("redirect_uri", "https://c.example/cb"),
            ("scope", "openid accounts"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("state", "s"),
            ("nonce", "n"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            if v.is_empty() {
                p.remove(*k);
            } else {
                p.insert(k.to_string(), v.to_string());
            }
        }
        p
    }

    #[test]
    fn fapi2_request_validates() {
        let r = validate_authorization_request(&params(&[]), &client("fapi2-security"), true).unwrap();
        assert_eq!(r.code_challenge.as_deref(), Some(CHALLENGE));
        assert_eq!(r.effective_mode(), ResponseMode::Query);
    }

    /// F2SP-5.3.2.2-1, F2SP-5.3.2.2-6, F2SP-5.3.2.2-5, R7636-4.3-default, F1B-5.2.2-10.
    #[test]
    fn fapi2_refusals() {
        let c = client("fapi2-security");
        let cases: Vec<(&[(&str, &str)], ErrorCode)> = vec![
            (&[("response_type", "code id_token")], ErrorCode::UnsupportedResponseType),
            (&[("response_type", "token")], ErrorCode::UnsupportedResponseType),
            (&[("redirect_uri", "")], ErrorCode::InvalidRequest),
            (&[("redirect_uri", "https://c.example/cb/")], ErrorCode::InvalidRequest),
            (&[("code_challenge", "")], ErrorCode::InvalidRequest),
            (&[("code_challenge_method", "")], ErrorCode::InvalidRequest),
            (&[("code_challenge_method", "plain")], ErrorCode::InvalidRequest),
            (&[("scope", "openid admin")], ErrorCode::InvalidScope),
            (&[("prompt", "none login")], ErrorCode::InvalidRequest),
            (&[("max_age", "-1")], ErrorCode::InvalidRequest),
            (&[("client_id", "c2")], ErrorCode::InvalidRequest),
            (&[("authorization_details", "[]")], ErrorCode::InvalidRequest),
        ];
        for (extra, code) in cases {
            assert_eq!(validate_authorization_request(&params(extra), &c, true).unwrap_err().code, code, "{extra:?}");
        }
    }

    /// F2SP-5.3.2.2-note4, F2SP-5.3.2.2-14: long state and a 64-character nonce work.
    #[test]
    fn long_state_and_nonce_are_accepted() {
        let state = "s".repeat(1500);
        let nonce = "n".repeat(64);
        let r = validate_authorization_request(
            &params(&[("state", &state), ("nonce", &nonce)]),
            &client("fapi2-security"),
            true,
        )
        .unwrap();
        assert_eq!(r.state.as_deref(), Some(state.as_str()));
    }

    /// F1A-5.2.2-2, F1B-5.2.2.2, F1B-5.2.2.3.
    #[test]
    fn fapi1_rules() {
        let c = client("fapi1-advanced");
        let ok = validate_authorization_request(&params(&[("response_type", "code id_token")]), &c, false).unwrap();
        assert_eq!(ok.effective_mode(), ResponseMode::Fragment);
        assert!(validate_authorization_request(&params(&[("response_type", "code")]), &c, false).is_err());
        assert!(
            validate_authorization_request(&params(&[("response_type", "code"), ("response_mode", "jwt")]), &c, false)
                .is_ok()
        );
        assert!(
            validate_authorization_request(&params(&[("response_type", "code id_token"), ("nonce", "")]), &c, false)
                .is_err()
        );
        assert!(
            validate_authorization_request(
                &params(&[("response_type", "code id_token"), ("scope", "accounts"), ("state", "")]),
                &c,
                false
            )
            .is_err()
        );
        // PKCE only required when pushed (F1A-5.2.2-18).
        assert!(
            validate_authorization_request(
                &params(&[("response_type", "code id_token"), ("code_challenge", ""), ("code_challenge_method", "")]),
                &c,
                false
            )
            .is_ok()
        );
        assert!(
            validate_authorization_request(
                &params(&[("response_type", "code id_token"), ("code_challenge", ""), ("code_challenge_method", "")]),
                &c,
                true
            )
            .is_err()
        );
    }

    /// F2MS-5.3.3: a registered response mode list is enforced.
    #[test]
    fn registered_response_modes_are_enforced() {
        let (k, _) = LocalSigningKey::generate("k", JwsAlg::ES256).unwrap();
        let m: ClientMetadata = serde_json::from_value(json!({"profile": "fapi2-message-signing", "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [k.public_jwk()]}, "redirect_uris": ["https://c.example/cb"], "response_modes": ["query.jwt"],
            "scope": "openid accounts"}))
        .unwrap();
        let c = validate_client_metadata(m, "c1".into(), &crate::client_rules::ClientRules::default()).unwrap();
        assert!(validate_authorization_request(&params(&[("response_mode", "query.jwt")]), &c, true).is_ok());
        let err = validate_authorization_request(&params(&[("response_mode", "jwt")]), &c, true).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
    }

    /// OIDC Core 3.3.2.1: `code id_token` without `openid` is refused; `code` without it is not
    /// this rule's business.
    #[test]
    fn id_token_response_needs_openid() {
        assert_eq!(
            check_openid_for_id_token(ResponseType::CodeIdToken, false).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        assert!(check_openid_for_id_token(ResponseType::CodeIdToken, true).is_ok());
        assert!(check_openid_for_id_token(ResponseType::Code, false).is_ok());
    }

    /// F2MS-5.4.1-1, F2MS-5.3.3 (issue 10 point 3): a Message Signing client that registered no
    /// response modes may ask for a plain (query) response or for JARM; one that registered
    /// only JWT modes is held to them, so a plain request is refused.
    #[test]
    fn message_signing_plain_response_unless_only_jwt_modes_registered() {
        let (k, _) = LocalSigningKey::generate("k", JwsAlg::ES256).unwrap();
        let client = |extra: serde_json::Value| {
            let mut m = json!({"profile": "fapi2-message-signing", "token_endpoint_auth_method": "private_key_jwt",
                "jwks": {"keys": [k.public_jwk()]}, "redirect_uris": ["https://c.example/cb"], "scope": "openid accounts"});
            m.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            validate_client_metadata(
                serde_json::from_value(m).unwrap(),
                "c1".into(),
                &crate::client_rules::ClientRules::default(),
            )
            .unwrap()
        };
        let open = client(json!({}));
        assert!(validate_authorization_request(&params(&[]), &open, true).is_ok());
        assert!(validate_authorization_request(&params(&[("response_mode", "query")]), &open, true).is_ok());
        assert!(validate_authorization_request(&params(&[("response_mode", "jwt")]), &open, true).is_ok());
        let jarm_only = client(json!({"response_modes": ["jwt", "query.jwt"]}));
        assert!(validate_authorization_request(&params(&[("response_mode", "jwt")]), &jarm_only, true).is_ok());
        for plain in [vec![], vec![("response_mode", "query")]] {
            let err = validate_authorization_request(&params(&plain), &jarm_only, true).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidRequest);
        }
    }

    /// R9449-10.1.
    #[test]
    fn dpop_jkt_reconciliation() {
        assert_eq!(reconcile_dpop_jkt(Some("a"), Some("a")).unwrap(), Some("a".into()));
        assert_eq!(reconcile_dpop_jkt(None, Some("b")).unwrap(), Some("b".into()));
        assert_eq!(reconcile_dpop_jkt(Some("a"), Some("b")).unwrap_err().code, ErrorCode::InvalidDpopProof);
    }

    /// Issue 10 point 1: cancel and deny are `access_denied`.
    #[test]
    fn user_refusal_is_access_denied() {
        assert_eq!(refused_by_user().code, ErrorCode::AccessDenied);
        assert_eq!(refused_by_user().code.as_str(), "access_denied");
    }

    #[test]
    fn fresh_login_rules() {
        let mut r = validate_authorization_request(&params(&[]), &client("fapi2-security"), true).unwrap();
        assert!(needs_fresh_login(&r, None, 100));
        assert!(!needs_fresh_login(&r, Some(50), 100));
        r.max_age = Some(30);
        assert!(needs_fresh_login(&r, Some(50), 100));
        r.max_age = None;
        r.prompt = vec!["login".into()];
        assert!(needs_fresh_login(&r, Some(99), 100));
    }

    #[test]
    fn redirect_building() {
        assert_eq!(
            redirect_with("https://c.example/cb", false, &[("code", "a b"), ("iss", "https://as")]),
            "https://c.example/cb?code=a+b&iss=https%3A%2F%2Fas"
        );
        assert_eq!(
            redirect_with("https://c.example/cb?x=1", false, &[("code", "c")]),
            "https://c.example/cb?x=1&code=c"
        );
        assert_eq!(redirect_with("https://c.example/cb", true, &[("code", "c")]), "https://c.example/cb#code=c");
    }
}
