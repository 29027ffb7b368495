//! The front-channel flow as data: where an authorization request comes from, and what
//! happens next once the browser's session and the user's consent are known. The server
//! gathers the facts (cookie, store) and acts on the answer; the decisions are here.

use crate::authz::{AuthorizationRequest, Params, needs_fresh_login};
use crate::client::Client;
use crate::error::{ErrorCode, OAuthError, OAuthResult};
use crate::response::{ErrorDelivery, FrontChannelError, ParamsOrigin, error_delivery};

/// R9126-2.2: the prefix of the request URIs this server issues (at PAR, or for a request
/// sent by value and kept under an internal URI).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// Longest request URI accepted (ours are far shorter).
const MAX_REQUEST_URI_LEN: usize = 512;

/// Where the parameters of an authorization request come from, decided once per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestSource<'a> {
    /// R9126-4: a `request_uri` this server issued; only the stored parameters count.
    Pushed(&'a str),
    /// R9101-5.2: a request object the client hosts at a registered https URL.
    ClientHosted(&'a str),
    /// R9101-5.1, F1A-5.2.2-1: a request object sent by value (`request`).
    ByValue(&'a str),
    /// Plain parameters, for a client whose profile allows them.
    Plain,
}

/// Classifies the request source from the front-channel parameters and the client:
/// - R9101-5-excl: `request` and `request_uri` never come together;
/// - F2SP-5.3.2.2-3, R9126-4-only: a client that must use PAR sends a `request_uri`;
/// - F2SP-client-5.3.3.2-6, R9101-6.3: with a `request_uri` nothing else on the front
///   channel counts; a PAR-bound client's URI is always treated as pushed (so a foreign
///   URL fails as an unknown request URI, never fetched);
/// - R9101-5.2: a client-hosted URL only when the deployment allows it
///   (`allow_client_hosted`) and the client registered it in `request_uris`;
/// - F1A-5.2.2-1: a client that must sign its requests sends a request object.
///
/// Errors before the redirect URI is trusted go to the error page (R6749-4.1.2.1).
pub fn classify_request_source<'a>(
    params: &'a Params,
    client: &Client,
    allow_client_hosted: bool,
) -> Result<RequestSource<'a>, FrontChannelError> {
    let request = params.get("request").map(String::as_str);
    let request_uri = params.get("request_uri").map(String::as_str);
    let page = |e: OAuthError| FrontChannelError { error: e, delivery: ErrorDelivery::Page };
    match (request, request_uri) {
        (Some(_), Some(_)) => Err(page(OAuthError::invalid_request("request and request_uri must not both be sent"))),
        (_, Some(uri)) if uri.starts_with(REQUEST_URI_PREFIX) || client.requires_par() => {
            Ok(RequestSource::Pushed(uri))
        }
        (_, Some(uri)) => {
            let refuse = |d: &'static str| page(OAuthError::new(ErrorCode::InvalidRequestUri, d));
            if !allow_client_hosted {
                return Err(refuse("client-hosted request_uri values are not accepted"));
            }
            if !registered_request_uri(client, uri) {
                return Err(refuse("the request_uri is not registered for this application"));
            }
            Ok(RequestSource::ClientHosted(uri))
        }
        (_, None) if client.requires_par() => Err(page(OAuthError::invalid_request(
            "this application must push its authorization request (PAR) and send only client_id and request_uri",
        ))),
        (Some(object), None) => Ok(RequestSource::ByValue(object)),
        (None, None) if client.requires_signed_request_object() => Err(FrontChannelError {
            error: OAuthError::invalid_request("this application must send a signed request object"),
            delivery: error_delivery(params, client, ParamsOrigin::Unsigned),
        }),
        (None, None) => Ok(RequestSource::Plain),
    }
}

/// R9101-5.2: the client registered this exact URL in its `request_uris` metadata.
fn registered_request_uri(client: &Client, uri: &str) -> bool {
    client
        .metadata
        .extra
        .get("request_uris")
        .and_then(|v| v.as_array())
        .is_some_and(|list| list.iter().any(|r| r.as_str() == Some(uri)))
}

/// R9126-2.2: whether a request URI has the form of the ones we issue (the store decides
/// whether it exists); anything else is refused before a lookup.
pub fn is_issued_request_uri(uri: &str) -> bool {
    uri.starts_with(REQUEST_URI_PREFIX) && !uri.contains('#') && uri.len() <= MAX_REQUEST_URI_LEN
}

/// A stored request may be continued by this client:
/// R9126-2.2, a request URI is bound to the client that pushed it;
/// R9126-4-validate, the client may have changed since the push, so the redirect URI must
/// still be registered before anything is sent there.
pub fn check_pushed_request(pushed_by: &str, request: &AuthorizationRequest, client: &Client) -> OAuthResult<()> {
    if pushed_by != client.client_id {
        return Err(unusable_request_uri());
    }
    if !client.has_redirect_uri(&request.redirect_uri) {
        return Err(OAuthError::invalid_request("the redirect_uri of the pushed request is no longer registered"));
    }
    Ok(())
}

/// R9126-2.2, R9126-4-once, R9126-4-expired: one answer for every unusable request URI,
/// so its existence, age or owner is not revealed.
pub fn unusable_request_uri() -> OAuthError {
    OAuthError::new(
        ErrorCode::InvalidRequestUri,
        "the request_uri is unknown, expired or already used, or belongs to another application",
    )
}

/// F2SP-5.3.2.2-12, R9126-2.2: a request URI lives the configured time, never longer than
/// the client's profile allows.
pub fn request_uri_lifetime(configured: u64, client: &Client) -> u64 {
    configured.min(client.policy().max_request_uri_ttl)
}

/// F2SP-5.3.2.1-11: a code lives the configured time, never longer than the client's
/// profile allows.
pub fn code_lifetime(configured: u64, client: &Client) -> u64 {
    configured.min(client.policy().max_code_ttl)
}

/// What the server knows about the browser's session: it exists, is unexpired, and its
/// user still exists. `handle` is the server's own session value, handed back in the step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn<S> {
    /// When the user authenticated.
    pub auth_time: i64,
    /// The session was created by a login for this very request (that login is fresh
    /// enough by definition: `prompt=login` and `max_age` were just satisfied).
    pub started_for_this_request: bool,
    /// The server's session record.
    pub handle: S,
}

/// OIDC Core §3.1.2.1 (`prompt=login`, `max_age`): whether a session is good enough for
/// this request.
pub fn session_satisfies<S>(request: &AuthorizationRequest, session: &SignedIn<S>, now: i64) -> bool {
    session.started_for_this_request || !needs_fresh_login(request, Some(session.auth_time), now)
}

/// F2SP-5.3.2.2-13, F1B-5.2.2-17: whether consent given earlier may be reused for this
/// client: its profile allows it, or the operator allowed it for FAPI clients
/// (`pages.remember_consent_for_fapi`).
pub fn may_remember_consent(client: &Client, operator_allows_for_fapi: bool) -> bool {
    client.policy().remember_consent || operator_allows_for_fapi
}

/// Whether remembered consent covers every requested scope.
pub fn consent_covers(granted: &str, requested: &str) -> bool {
    let granted: Vec<&str> = granted.split(' ').collect();
    requested.split(' ').filter(|s| !s.is_empty()).all(|s| granted.contains(&s))
}

/// The consent to remember after an approval: what was granted before plus the newly
/// approved scopes, each once, in order.
pub fn merged_consent(granted: Option<&str>, approved: &str) -> String {
    let mut scopes: Vec<&str> = granted.unwrap_or("").split(' ').filter(|s| !s.is_empty()).collect();
    for s in approved.split(' ').filter(|s| !s.is_empty()) {
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    scopes.join(" ")
}

/// The facts [`next_step`] decides on.
#[derive(Debug, Clone)]
pub struct Facts<'a, S> {
    /// The browser's session, if any (see [`SignedIn`]).
    pub session: Option<SignedIn<S>>,
    /// The scope the user consented to earlier for this client, when remembering is
    /// allowed ([`may_remember_consent`]) and a record exists.
    pub remembered_consent: Option<&'a str>,
}

/// What the front channel does next with a known, valid request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep<S> {
    /// Show the login page.
    Login,
    /// Show the consent page to this signed-in user.
    Consent(S),
    /// Approve at once: the user's remembered consent covers the request.
    Approve(S),
    /// End the request with this error at the client (`login_required`, `consent_required`).
    Refuse(OAuthError),
}

/// OIDC Core §3.1.2.3–4: sign in, ask for consent, or decide at once.
/// `prompt=none` never shows a page: `login_required` without a usable session,
/// `consent_required` without remembered consent. `prompt=login` / `max_age` make an
/// older session unusable ([`session_satisfies`]); `prompt=consent` ignores remembered
/// consent.
pub fn next_step<S>(request: &AuthorizationRequest, facts: Facts<'_, S>, now: i64) -> NextStep<S> {
    let prompt = |p: &str| request.prompt.iter().any(|x| x == p);
    let Some(session) = facts.session.filter(|s| session_satisfies(request, s, now)) else {
        if prompt("none") {
            return NextStep::Refuse(OAuthError::new(ErrorCode::LoginRequired, "the user is not signed in"));
        }
        return NextStep::Login;
    };
    let remembered = facts.remembered_consent.is_some_and(|granted| consent_covers(granted, &request.scope));
    if remembered && !prompt("consent") {
        return NextStep::Approve(session.handle);
    }
    if prompt("none") {
        return NextStep::Refuse(OAuthError::new(
            ErrorCode::ConsentRequired,
            "the user has not consented to this request",
        ));
    }
    NextStep::Consent(session.handle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::validate_authorization_request;
    use crate::client::{ClientMetadata, validate_client_metadata};
    use crate::jose::{JwsAlg, LocalSigningKey};
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn client(profile: &str, extra: serde_json::Value) -> Client {
        let (k, _) = LocalSigningKey::generate("k", JwsAlg::ES256).unwrap();
        let mut m = json!({"profile": profile, "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [k.public_jwk()]}, "redirect_uris": ["https://c.example/cb"],
            "scope": "openid accounts"});
        m.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let m: ClientMetadata = serde_json::from_value(m).unwrap();
        validate_client_metadata(m, "c1".into(), &crate::client_rules::ClientRules::default()).unwrap()
    }

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn request(prompt: &[&str], max_age: Option<i64>) -> AuthorizationRequest {
        let c = client("oauth2", json!({}));
        let mut r = validate_authorization_request(
            &params(&[
                ("response_type", "code"),
                ("redirect_uri", "https://c.example/cb"),
                ("scope", "openid accounts"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
                ("state", "s"),
            ]),
            &c,
            false,
        )
        .unwrap();
        r.prompt = prompt.iter().map(|p| p.to_string()).collect();
        r.max_age = max_age;
        r
    }

    fn source<'a>(p: &'a Params, c: &Client, hosted: bool) -> Result<RequestSource<'a>, ErrorCode> {
        classify_request_source(p, c, hosted).map_err(|e| e.error.code)
    }

    /// R9101-5-excl: `request` and `request_uri` together are refused on the page.
    #[test]
    fn request_and_request_uri_together_are_refused() {
        let c = client("fapi1-advanced", json!({}));
        let p = params(&[("request", "x.y.z"), ("request_uri", "urn:ietf:params:oauth:request_uri:a")]);
        let e = classify_request_source(&p, &c, true).unwrap_err();
        assert_eq!(e.error.code, ErrorCode::InvalidRequest);
        assert_eq!(e.delivery, ErrorDelivery::Page);
    }

    /// F2SP-5.3.2.2-3, R9126-4-only: a FAPI 2.0 client without a request_uri is refused;
    /// F2SP-client-5.3.3.2-6: with one, only the pushed request counts, whatever else is sent.
    #[test]
    fn par_bound_client_must_send_a_pushed_request_uri() {
        let c = client("fapi2-security", json!({}));
        let plain = params(&[("response_type", "code"), ("redirect_uri", "https://c.example/cb")]);
        assert_eq!(source(&plain, &c, true), Err(ErrorCode::InvalidRequest));
        let by_value = params(&[("request", "x.y.z")]);
        assert_eq!(source(&by_value, &c, true), Err(ErrorCode::InvalidRequest));
        let uri = "urn:ietf:params:oauth:request_uri:abc";
        let pushed = params(&[("request_uri", uri), ("scope", "openid admin")]);
        assert_eq!(source(&pushed, &c, true), Ok(RequestSource::Pushed(uri)));
        // A foreign URL from a PAR-bound client is not fetched: it is an unknown pushed URI.
        let foreign = params(&[("request_uri", "https://c.example/ro")]);
        assert_eq!(source(&foreign, &c, true), Ok(RequestSource::Pushed("https://c.example/ro")));
    }

    /// R9101-5.2: a client-hosted request object only where the deployment allows it and
    /// the client registered the URL.
    #[test]
    fn client_hosted_request_uri_needs_permission_and_registration() {
        let c = client("fapi1-advanced", json!({"request_uris": ["https://c.example/ro"]}));
        let registered = params(&[("request_uri", "https://c.example/ro")]);
        assert_eq!(source(&registered, &c, true), Ok(RequestSource::ClientHosted("https://c.example/ro")));
        assert_eq!(source(&registered, &c, false), Err(ErrorCode::InvalidRequestUri));
        let other = params(&[("request_uri", "https://c.example/other")]);
        assert_eq!(source(&other, &c, true), Err(ErrorCode::InvalidRequestUri));
    }

    /// F1A-5.2.2-1: a FAPI 1.0 client sends a request object; without one the error goes to
    /// its registered redirect URI, never to an unregistered one.
    #[test]
    fn signed_request_object_required_for_fapi1() {
        let c = client("fapi1-advanced", json!({}));
        let object = params(&[("request", "x.y.z")]);
        assert_eq!(source(&object, &c, false), Ok(RequestSource::ByValue("x.y.z")));
        let plain = params(&[("redirect_uri", "https://c.example/cb"), ("state", "s")]);
        let e = classify_request_source(&plain, &c, false).unwrap_err();
        assert_eq!(e.error.code, ErrorCode::InvalidRequest);
        assert!(matches!(e.delivery, ErrorDelivery::Client(t) if t.redirect_uri == "https://c.example/cb"));
        let elsewhere = params(&[("redirect_uri", "https://evil.example/cb")]);
        assert_eq!(classify_request_source(&elsewhere, &c, false).unwrap_err().delivery, ErrorDelivery::Page);
        let oauth = client("oauth2", json!({}));
        assert_eq!(source(&plain, &oauth, false), Ok(RequestSource::Plain));
    }

    /// R9126-2.2: only our own URNs are looked up.
    #[test]
    fn issued_request_uri_form() {
        assert!(is_issued_request_uri("urn:ietf:params:oauth:request_uri:abc"));
        assert!(!is_issued_request_uri("https://c.example/ro"));
        assert!(!is_issued_request_uri("urn:ietf:params:oauth:request_uri:abc#x"));
        assert!(!is_issued_request_uri(&format!("{REQUEST_URI_PREFIX}{}", "a".repeat(600))));
    }

    /// R9126-2.2 (bound to the pushing client), R9126-4-validate (redirect URI still registered).
    #[test]
    fn pushed_request_is_bound_to_its_client_and_registration() {
        let c = client("fapi2-security", json!({}));
        let mut r = request(&[], None);
        assert!(check_pushed_request("c1", &r, &c).is_ok());
        assert_eq!(check_pushed_request("c2", &r, &c).unwrap_err().code, ErrorCode::InvalidRequestUri);
        r.redirect_uri = "https://c.example/old".into();
        assert_eq!(check_pushed_request("c1", &r, &c).unwrap_err().code, ErrorCode::InvalidRequest);
    }

    /// F2SP-5.3.2.1-11, F2SP-5.3.2.2-12: the profile caps the configured lifetimes.
    #[test]
    fn lifetimes_are_capped_by_the_profile() {
        let c = client("fapi2-security", json!({}));
        assert_eq!(code_lifetime(600, &c), 60);
        assert_eq!(code_lifetime(30, &c), 30);
        assert_eq!(request_uri_lifetime(3600, &c), 599);
        assert_eq!(request_uri_lifetime(90, &c), 90);
    }

    fn signed_in(auth_time: i64, for_this: bool) -> Option<SignedIn<&'static str>> {
        Some(SignedIn { auth_time, started_for_this_request: for_this, handle: "sess" })
    }

    /// OIDC Core §3.1.2.1: no session means the login page, or `login_required` with
    /// `prompt=none`.
    #[test]
    fn without_a_session_the_user_signs_in() {
        let facts = || Facts::<&str> { session: None, remembered_consent: Some("openid accounts") };
        assert_eq!(next_step(&request(&[], None), facts(), NOW), NextStep::Login);
        let step = next_step(&request(&["none"], None), facts(), NOW);
        assert!(matches!(step, NextStep::Refuse(e) if e.code == ErrorCode::LoginRequired));
    }

    /// OIDC Core §3.1.2.1: `prompt=login` and `max_age` make an older session unusable, but
    /// not the one just created for this request.
    #[test]
    fn prompt_login_and_max_age_need_a_fresh_session() {
        let facts = |session| Facts { session, remembered_consent: None };
        assert_eq!(next_step(&request(&[], None), facts(signed_in(NOW - 10, false)), NOW), NextStep::Consent("sess"));
        assert_eq!(next_step(&request(&["login"], None), facts(signed_in(NOW - 10, false)), NOW), NextStep::Login);
        assert_eq!(next_step(&request(&[], Some(5)), facts(signed_in(NOW - 10, false)), NOW), NextStep::Login);
        assert_eq!(
            next_step(&request(&[], Some(60)), facts(signed_in(NOW - 10, false)), NOW),
            NextStep::Consent("sess")
        );
        assert_eq!(
            next_step(&request(&["login"], Some(5)), facts(signed_in(NOW - 10, true)), NOW),
            NextStep::Consent("sess")
        );
        let step = next_step(&request(&["none"], Some(5)), facts(signed_in(NOW - 10, false)), NOW);
        assert!(matches!(step, NextStep::Refuse(e) if e.code == ErrorCode::LoginRequired));
    }

    /// Remembered consent that covers every scope approves at once, unless `prompt=consent`;
    /// with `prompt=none` and no such consent the answer is `consent_required`.
    #[test]
    fn remembered_consent_and_prompt_consent() {
        let facts = |granted| Facts { session: signed_in(NOW - 10, false), remembered_consent: granted };
        let r = request(&[], None);
        assert_eq!(next_step(&r, facts(Some("openid accounts profile")), NOW), NextStep::Approve("sess"));
        assert_eq!(next_step(&r, facts(Some("openid")), NOW), NextStep::Consent("sess"));
        assert_eq!(next_step(&r, facts(None), NOW), NextStep::Consent("sess"));
        assert_eq!(
            next_step(&request(&["consent"], None), facts(Some("openid accounts")), NOW),
            NextStep::Consent("sess")
        );
        let none = request(&["none"], None);
        assert_eq!(next_step(&none, facts(Some("openid accounts")), NOW), NextStep::Approve("sess"));
        assert!(
            matches!(next_step(&none, facts(Some("openid")), NOW), NextStep::Refuse(e) if e.code == ErrorCode::ConsentRequired)
        );
    }

    /// F2SP-5.3.2.2-13: FAPI profiles do not reuse consent unless the operator allows it.
    #[test]
    fn consent_memory_follows_profile_and_operator() {
        let fapi = client("fapi2-security", json!({}));
        let oauth = client("oauth2", json!({}));
        assert!(!may_remember_consent(&fapi, false));
        assert!(may_remember_consent(&fapi, true));
        assert_eq!(may_remember_consent(&oauth, false), oauth.policy().remember_consent);
    }

    #[test]
    fn consent_scopes_cover_and_merge() {
        assert!(consent_covers("openid accounts", "accounts openid"));
        assert!(consent_covers("openid", ""));
        assert!(!consent_covers("openid", "openid payments"));
        assert_eq!(merged_consent(Some("openid accounts"), "accounts payments"), "openid accounts payments");
        assert_eq!(merged_consent(None, " openid  accounts "), "openid accounts");
    }
}
