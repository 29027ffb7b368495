//! The authorization response as data: one [`ResponsePlan`] for successes and errors
//! alike — parameters, delivery (query, fragment, form post), whether JARM-signed and
//! encrypted, and the redirect URI — and where a front-channel error may go at all. The
//! server only signs, encrypts and encodes what the plan says.

use crate::authz::{AuthorizationRequest, MAX_STATE_LEN, Params, trusted_redirect_uri};
use crate::client::Client;
use crate::error::OAuthError;
use crate::policy::{ResponseMode, ResponseType};
use serde_json::{Map, Value};

/// Lifetime of a JARM response JWT (JARM §4.1: short).
pub const JARM_TTL: i64 = 60;

/// Where and how a response to one request is delivered: the (trusted) redirect URI, the
/// response type and mode it asked for, and the `state` to echo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseTarget {
    /// A redirect URI registered for the client.
    pub redirect_uri: String,
    /// The response type.
    pub response_type: ResponseType,
    /// The effective response mode.
    pub mode: ResponseMode,
    /// `state` to return, from parameters the profile lets us trust.
    pub state: Option<String>,
}

impl ResponseTarget {
    /// The target of a validated request.
    pub fn of(request: &AuthorizationRequest) -> ResponseTarget {
        let response_type = request.response_type().unwrap_or(ResponseType::Code);
        ResponseTarget {
            redirect_uri: request.redirect_uri.clone(),
            response_type,
            mode: request.effective_mode(),
            state: request.state.clone(),
        }
    }
    /// F1A-5.2.2.1-4, OIDC-3.3.2.11: whether a successful response carries an ID token
    /// from the authorization endpoint (hybrid `code id_token`).
    pub fn returns_id_token(&self) -> bool {
        self.response_type == ResponseType::CodeIdToken
    }
}

/// How far the parameters an error answers can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamsOrigin {
    /// A verified request object, or plain parameters of a client allowed to send them.
    Verified,
    /// Plain parameters of a client that must sign its requests (F1A-5.2.2-1).
    Unsigned,
    /// A request object that failed verification: its outer parameters are unsigned.
    FailedVerification,
}

/// Where a front-channel error goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorDelivery {
    /// The redirect URI cannot be trusted: the user sees an error page, nothing is sent
    /// to the client (R6749-4.1.2.1, F2SP-5.3.2.1-7).
    Page,
    /// To the client, exactly like a response to this target would go.
    Client(ResponseTarget),
}

/// A front-channel error together with where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontChannelError {
    /// The error.
    pub error: OAuthError,
    /// Its delivery.
    pub delivery: ErrorDelivery,
}

impl FrontChannelError {
    /// An error shown on the error page.
    pub fn page(error: OAuthError) -> FrontChannelError {
        FrontChannelError { error, delivery: ErrorDelivery::Page }
    }
}

/// Issue 10 point 2, R6749-4.1.2.1, F1A-5.2.2-10, JARM §4.3: where an error about these
/// parameters goes.
/// - `Verified`: to a registered redirect URI exactly like a success would, in the asked
///   response mode where the profile allows it (JARM, fragment for `code id_token`), with
///   `state`.
/// - `Unsigned`: to a registered redirect URI as a plain query error with `state` (the
///   client gets told; the unsigned parameters choose no JARM or fragment delivery).
/// - `FailedVerification`: the unsigned outer parameters choose nothing: only a client with
///   exactly one registered redirect URI gets a plain query error there, without `state`.
///
/// Otherwise the error page.
pub fn error_delivery(params: &Params, client: &Client, origin: ParamsOrigin) -> ErrorDelivery {
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let state = || get("state").filter(|s| s.len() <= MAX_STATE_LEN).map(str::to_string);
    let plain = |redirect_uri: &str, state: Option<String>| ResponseTarget {
        redirect_uri: redirect_uri.to_string(),
        response_type: ResponseType::Code,
        mode: ResponseMode::Query,
        state,
    };
    let target = match origin {
        ParamsOrigin::Verified => trusted_redirect_uri(params, client).map(|redirect_uri| {
            let policy = client.policy();
            let response_type = get("response_type")
                .and_then(ResponseType::parse)
                .filter(|rt| policy.allows_response_type(*rt))
                .unwrap_or(ResponseType::Code);
            let asked =
                get("response_mode").and_then(ResponseMode::parse).filter(|m| policy.response_modes.contains(m));
            ResponseTarget {
                redirect_uri: redirect_uri.to_string(),
                response_type,
                mode: asked.unwrap_or(ResponseMode::default_for(response_type)),
                state: state(),
            }
        }),
        ParamsOrigin::Unsigned => trusted_redirect_uri(params, client).map(|r| plain(r, state())),
        ParamsOrigin::FailedVerification => match client.metadata.redirect_uris.as_slice() {
            [only] => Some(plain(only, None)),
            _ => None,
        },
    };
    target.map_or(ErrorDelivery::Page, ErrorDelivery::Client)
}

/// What an authorization response carries.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// A code, with the front-channel ID token when the target asks for one (already
    /// signed and, if registered, encrypted by the server).
    Code {
        /// The authorization code.
        code: &'a str,
        /// The hybrid flow's ID token.
        id_token: Option<&'a str>,
    },
    /// An error.
    Error(&'a OAuthError),
}

/// How a response reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Redirect with parameters in the query.
    Query,
    /// Redirect with parameters in the fragment.
    Fragment,
    /// An auto-submitting HTML form posted to the redirect URI.
    FormPost,
}

/// JARM §4.3: where each response mode puts the response; `jwt` means `query.jwt` for
/// `code` and `fragment.jwt` for responses that carry tokens (hybrid).
pub fn delivery_for(mode: ResponseMode, response_type: ResponseType) -> Delivery {
    match mode {
        ResponseMode::Query | ResponseMode::QueryJwt => Delivery::Query,
        ResponseMode::Fragment | ResponseMode::FragmentJwt => Delivery::Fragment,
        ResponseMode::FormPostJwt => Delivery::FormPost,
        ResponseMode::Jwt => match response_type {
            ResponseType::CodeIdToken => Delivery::Fragment,
            ResponseType::Code => Delivery::Query,
        },
    }
}

/// The parameters of a response, as they are or as one JARM JWT.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseBody {
    /// RFC 9207: the parameters as they are, `iss` included.
    Plain(Vec<(&'static str, String)>),
    /// JARM §4.1: these claims, signed with the client's `authorization_signed_response_alg`
    /// and then, JARM §4.2, encrypted when `encrypted`, sent as the one `response` parameter.
    Jarm {
        /// The JWT claims (`iss` inside, F2MS-5.4.1-note).
        claims: Value,
        /// Whether the signed JWT is then encrypted to the client.
        encrypted: bool,
    },
}

/// Everything the server needs to send one authorization response.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponsePlan {
    /// The registered redirect URI.
    pub redirect_uri: String,
    /// Query, fragment or form post.
    pub delivery: Delivery,
    /// The parameters.
    pub body: ResponseBody,
}

/// The authorization response for a target, success or error alike (F2SP-5.3.2.2-7,
/// R9207-2, JARM §4.1/§4.3): `code` (and the hybrid `id_token`) or `error` and
/// `error_description`, then `state`; for JARM modes these become the claims of one JWT
/// with `iss`, `aud` and a short `exp`, otherwise `iss` is added as a parameter.
pub fn plan_response(
    target: &ResponseTarget,
    outcome: Outcome<'_>,
    client: &Client,
    issuer: &str,
    now: i64,
) -> ResponsePlan {
    let mut params: Vec<(&'static str, String)> = Vec::new();
    match outcome {
        Outcome::Code { code, id_token } => {
            params.push(("code", code.to_string()));
            if let Some(t) = id_token {
                params.push(("id_token", t.to_string()));
            }
        }
        Outcome::Error(e) => {
            params.push(("error", e.code.as_str().to_string()));
            params.push(("error_description", e.description.to_string()));
        }
    }
    if let Some(s) = &target.state {
        params.push(("state", s.clone()));
    }
    let body = if target.mode.is_jwt() {
        let claims = jarm_claims(issuer, &client.client_id, now, &params);
        ResponseBody::Jarm { claims, encrypted: client.authorization_encryption.is_some() }
    } else {
        params.push(("iss", issuer.to_string()));
        ResponseBody::Plain(params)
    };
    ResponsePlan {
        redirect_uri: target.redirect_uri.clone(),
        delivery: delivery_for(target.mode, target.response_type),
        body,
    }
}

/// JARM §4.1: the response document — `iss`, `aud`, `exp`, and the response parameters.
pub fn jarm_claims(issuer: &str, client_id: &str, now: i64, params: &[(&str, String)]) -> Value {
    let mut m = Map::new();
    for (k, v) in params {
        m.insert((*k).to_string(), v.as_str().into());
    }
    m.insert("iss".into(), issuer.into());
    m.insert("aud".into(), client_id.into());
    m.insert("exp".into(), (now + JARM_TTL).into());
    m.insert("iat".into(), now.into());
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{ClientMetadata, validate_client_metadata};
    use crate::error::ErrorCode;
    use crate::jose::{JwsAlg, LocalSigningKey};
    use serde_json::json;

    const ISS: &str = "https://as.example";
    const NOW: i64 = 1_800_000_000;
    const CB: &str = "https://c.example/cb";

    fn client(profile: &str, extra: Value) -> Client {
        let (k, _) = LocalSigningKey::generate("k", JwsAlg::PS256).unwrap();
        let mut m = json!({"profile": profile, "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [k.public_jwk()]}, "redirect_uris": [CB], "scope": "openid accounts"});
        m.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let m: ClientMetadata = serde_json::from_value(m).unwrap();
        validate_client_metadata(m, "c1".into(), &crate::client_rules::ClientRules::default()).unwrap()
    }

    fn params(pairs: &[(&str, &str)]) -> Params {
        let mut p: Params =
            [("redirect_uri", CB), ("state", "s")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        p.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        p
    }

    fn target(delivery: ErrorDelivery) -> ResponseTarget {
        match delivery {
            ErrorDelivery::Client(t) => t,
            ErrorDelivery::Page => panic!("expected a client target"),
        }
    }

    fn refused() -> OAuthError {
        OAuthError::invalid_request("code_challenge_method must be S256")
    }

    /// Issue 10 point 2, JARM §4.3: an error for a `response_mode=jwt` request is a JARM
    /// error JWT in the query, with `state` inside and no plain parameters.
    #[test]
    fn jarm_error_for_response_mode_jwt() {
        let c = client("fapi1-advanced", json!({}));
        let t = target(error_delivery(
            &params(&[("response_type", "code"), ("response_mode", "jwt")]),
            &c,
            ParamsOrigin::Verified,
        ));
        let e = refused();
        let plan = plan_response(&t, Outcome::Error(&e), &c, ISS, NOW);
        assert_eq!(plan.delivery, Delivery::Query);
        assert_eq!(plan.redirect_uri, CB);
        let ResponseBody::Jarm { claims, encrypted } = plan.body else { panic!("expected JARM") };
        assert!(!encrypted);
        assert_eq!(claims["error"], "invalid_request");
        assert_eq!(claims["state"], "s");
        assert_eq!(claims["iss"], ISS);
        assert_eq!(claims["aud"], "c1");
        assert_eq!(claims["exp"], NOW + JARM_TTL);
    }

    /// Issue 10 point 2, OIDC Core §3.3.2.5: a `code id_token` request's error goes in the
    /// fragment, with `state` and `iss` (RFC 9207).
    #[test]
    fn hybrid_error_goes_in_the_fragment() {
        let c = client("fapi1-advanced", json!({}));
        let t = target(error_delivery(&params(&[("response_type", "code id_token")]), &c, ParamsOrigin::Verified));
        let e = refused();
        let plan = plan_response(&t, Outcome::Error(&e), &c, ISS, NOW);
        assert_eq!(plan.delivery, Delivery::Fragment);
        let ResponseBody::Plain(p) = plan.body else { panic!("expected plain") };
        let names: Vec<&str> = p.iter().map(|(k, _)| *k).collect();
        assert_eq!(names, ["error", "error_description", "state", "iss"]);
    }

    /// JARM §4.3.4: `form_post.jwt` posts one `response`, encrypted when registered (§4.2).
    #[test]
    fn form_post_jwt_success_with_encryption() {
        let mut c = client("fapi1-advanced", json!({}));
        c.authorization_encryption =
            Some(crate::client::Encryption { alg: "RSA-OAEP-256".into(), enc: "A256GCM".into() });
        let t = ResponseTarget {
            redirect_uri: CB.into(),
            response_type: ResponseType::CodeIdToken,
            mode: ResponseMode::FormPostJwt,
            state: None,
        };
        assert!(t.returns_id_token());
        let plan = plan_response(&t, Outcome::Code { code: "abc", id_token: Some("h.p.s") }, &c, ISS, NOW);
        assert_eq!(plan.delivery, Delivery::FormPost);
        let ResponseBody::Jarm { claims, encrypted } = plan.body else { panic!("expected JARM") };
        assert!(encrypted);
        assert_eq!(claims["code"], "abc");
        assert_eq!(claims["id_token"], "h.p.s");
        assert!(claims.get("state").is_none());
    }

    /// R9207-2, F2SP-5.3.2.2-7: a plain success carries `code`, `state` and `iss` in the query.
    #[test]
    fn plain_success_carries_state_and_iss() {
        let c = client("fapi2-security", json!({}));
        let t = ResponseTarget {
            redirect_uri: CB.into(),
            response_type: ResponseType::Code,
            mode: ResponseMode::Query,
            state: Some("s".into()),
        };
        let plan = plan_response(&t, Outcome::Code { code: "abc", id_token: None }, &c, ISS, NOW);
        assert_eq!(plan.delivery, Delivery::Query);
        assert_eq!(
            plan.body,
            ResponseBody::Plain(vec![("code", "abc".into()), ("state", "s".into()), ("iss", ISS.into())])
        );
    }

    /// Issue 10 point 2, F1A-5.2.2-10: a request object that fails verification never lets
    /// its outer parameters choose the redirect URI, the mode or `state`.
    #[test]
    fn unverified_request_object_chooses_nothing() {
        let c = client("fapi1-advanced", json!({}));
        let outer = params(&[("response_type", "code"), ("response_mode", "fragment.jwt"), ("state", "outer")]);
        let t = target(error_delivery(&outer, &c, ParamsOrigin::FailedVerification));
        assert_eq!(
            t,
            ResponseTarget {
                redirect_uri: CB.into(),
                response_type: ResponseType::Code,
                mode: ResponseMode::Query,
                state: None
            }
        );
        let mut two = c.clone();
        two.metadata.redirect_uris.push("https://c.example/other".into());
        assert_eq!(error_delivery(&outer, &two, ParamsOrigin::FailedVerification), ErrorDelivery::Page);
    }

    /// R6749-4.1.2.1: an unregistered redirect URI never receives an error; unsigned
    /// parameters get a plain query error with `state`.
    #[test]
    fn untrusted_redirect_uri_means_the_error_page() {
        let c = client("fapi1-advanced", json!({}));
        let evil = params(&[("redirect_uri", "https://evil.example/cb")]);
        assert_eq!(error_delivery(&evil, &c, ParamsOrigin::Verified), ErrorDelivery::Page);
        assert_eq!(error_delivery(&evil, &c, ParamsOrigin::Unsigned), ErrorDelivery::Page);
        let t = target(error_delivery(&params(&[("response_mode", "jwt")]), &c, ParamsOrigin::Unsigned));
        assert_eq!((t.mode, t.state.as_deref()), (ResponseMode::Query, Some("s")));
    }

    /// `state` longer than the limit is not echoed; a mode the profile forbids falls back
    /// to the response type's default.
    #[test]
    fn state_and_mode_only_where_allowed() {
        let c = client("fapi2-security", json!({}));
        let long = "s".repeat(MAX_STATE_LEN + 1);
        let t = target(error_delivery(
            &params(&[("state", &long), ("response_mode", "form_post")]),
            &c,
            ParamsOrigin::Verified,
        ));
        assert_eq!((t.mode, t.state.as_deref()), (ResponseMode::Query, None));
        let e = OAuthError::new(ErrorCode::AccessDenied, "no");
        let plan = plan_response(&t, Outcome::Error(&e), &c, ISS, NOW);
        assert!(matches!(plan.body, ResponseBody::Plain(p) if !p.iter().any(|(k, _)| *k == "state")));
    }

    #[test]
    fn delivery_per_mode() {
        assert_eq!(delivery_for(ResponseMode::Jwt, ResponseType::Code), Delivery::Query);
        assert_eq!(delivery_for(ResponseMode::Jwt, ResponseType::CodeIdToken), Delivery::Fragment);
        assert_eq!(delivery_for(ResponseMode::FormPostJwt, ResponseType::Code), Delivery::FormPost);
        assert_eq!(delivery_for(ResponseMode::FragmentJwt, ResponseType::Code), Delivery::Fragment);
    }
}
