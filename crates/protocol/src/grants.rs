//! The token endpoint's grant checks as pure functions: redeeming an authorization code
//! (client, redirect URI, PKCE, DPoP key binding) and using a refresh token (client,
//! expiry, rotation reuse, sender constraint, scope narrowing). The store consumes codes and
//! rotates refresh tokens atomically; these functions decide whether what it returned may
//! be used.

use crate::error::{OAuthError, OAuthResult};
use crate::pkce;
use crate::tokens::Binding;

/// What a code was issued for, as stored with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssuedCode<'a> {
    /// The client the code was issued to.
    pub client_id: &'a str,
    /// The redirect URI of the authorization request.
    pub redirect_uri: &'a str,
    /// The request's PKCE S256 challenge.
    pub code_challenge: Option<&'a str>,
    /// The DPoP key the code is bound to (RFC 9449 §10), if any.
    pub dpop_jkt: Option<&'a str>,
}

/// What the token request presents with the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeRedemption<'a> {
    /// The authenticated client.
    pub client_id: &'a str,
    /// The `redirect_uri` parameter.
    pub redirect_uri: Option<&'a str>,
    /// The `code_verifier` parameter.
    pub code_verifier: Option<&'a str>,
    /// The thumbprint of the request's DPoP proof key, if a proof came.
    pub dpop_jkt: Option<&'a str>,
}

/// Whether a consumed code may be redeemed by this token request:
/// R6749-4.1.3, it was issued to this client and the `redirect_uri` is the authorization
/// request's (F2SP-5.3.2.1-7: exact match); R7636-4.6, R9700-2.1.1, the PKCE verifier
/// matches the challenge (and neither comes alone); F2SP-5.3.2.1-12, R9449-10, a code bound
/// to a DPoP key needs a proof by that key.
pub fn check_code_redemption(code: &IssuedCode<'_>, presented: &CodeRedemption<'_>) -> OAuthResult<()> {
    if code.client_id != presented.client_id {
        return Err(OAuthError::invalid_grant("the code was issued to another client"));
    }
    if presented.redirect_uri != Some(code.redirect_uri) {
        return Err(OAuthError::invalid_grant("redirect_uri does not match the authorization request"));
    }
    pkce::verify(presented.code_verifier, code.code_challenge)?;
    if let Some(bound) = code.dpop_jkt
        && presented.dpop_jkt != Some(bound)
    {
        return Err(OAuthError::invalid_dpop_proof("the DPoP key does not match the one the code is bound to"));
    }
    Ok(())
}

/// Why the store could not hand out a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnusableCode {
    /// It was redeemed before.
    AlreadyUsed,
    /// Its lifetime ended (F2SP-5.3.2.1-11: at most 60 s for FAPI).
    Expired,
    /// No such code.
    Unknown,
}

/// R6749-4.1.2, R6749-4.1.2-revoke: an unusable code is `invalid_grant`; a code presented
/// a second time means it leaked, so everything issued from it ends.
pub fn refuse_code(why: UnusableCode) -> GrantRefusal {
    let (description, revoke_grant) = match why {
        UnusableCode::AlreadyUsed => ("the code was already used", true),
        UnusableCode::Expired => ("the code has expired", false),
        UnusableCode::Unknown => ("the code is not valid", false),
    };
    GrantRefusal { error: OAuthError::invalid_grant(description), revoke_grant }
}

/// F2SP-5.3.2.1-9, R9449-5-rt: a refreshed token keeps its original binding kind: an
/// mTLS-bound grant must be refreshed with the same certificate; a DPoP grant needs a
/// proof, whose key binds the new access token.
pub fn check_refresh_binding(original: &Binding, new: &Binding) -> OAuthResult<()> {
    match (original, new) {
        (Binding::Mtls { x5t_s256: a }, Binding::Mtls { x5t_s256: b }) if a == b => Ok(()),
        (Binding::Mtls { .. }, _) => {
            Err(OAuthError::invalid_grant("the refresh token is bound to another certificate"))
        }
        (Binding::Dpop { .. }, Binding::Dpop { .. }) => Ok(()),
        (Binding::Dpop { .. }, _) => {
            Err(OAuthError::invalid_dpop_proof("a DPoP proof is required to refresh this grant"))
        }
        (Binding::Bearer, _) => Ok(()),
    }
}

/// What the store says about a presented refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshTokenState<'a> {
    /// The client it was issued to.
    pub client_id: &'a str,
    /// Expiry.
    pub expires_at: i64,
    /// Revoked, by rotation or otherwise.
    pub revoked: bool,
    /// When it was rotated (replaced by a successor), if it was.
    pub rotated_at: Option<i64>,
}

/// Why a code or refresh token is refused, and whether its whole grant must end.
#[derive(Debug, Clone, PartialEq)]
pub struct GrantRefusal {
    /// The error for the client (always `invalid_grant`).
    pub error: OAuthError,
    /// True when the grant is to be revoked: an already-rotated token came back.
    pub revoke_grant: bool,
}

/// R6749-6, RFC 9700 §4.14.2: a refresh token is usable only by the client it was issued
/// to, before its expiry, while not revoked. A token that was rotated and is presented
/// again means two parties hold it: the grant ends (all its refresh and access tokens).
/// `reuse_leeway` seconds after a rotation the old token is refused without ending the
/// grant, so a client's own concurrent refreshes do not lock it out (0 = strict).
pub fn check_refresh_token(
    token: &RefreshTokenState<'_>,
    client_id: &str,
    now: i64,
    reuse_leeway: i64,
) -> Result<(), GrantRefusal> {
    let refuse = |revoke_grant| {
        Err(GrantRefusal { error: OAuthError::invalid_grant("the refresh token is not valid"), revoke_grant })
    };
    if token.client_id != client_id {
        return refuse(false);
    }
    if let Some(rotated_at) = token.rotated_at {
        return refuse(now.saturating_sub(rotated_at) >= reuse_leeway);
    }
    if token.revoked || token.expires_at <= now {
        return refuse(false);
    }
    Ok(())
}

/// F2SP-5.3.2.1-14 / refresh: the requested scope must be a subset of what was granted;
/// narrowing is allowed, widening refused (`invalid_scope`).
pub fn narrow_scope(granted: &str, requested: Option<&str>) -> OAuthResult<String> {
    let Some(req) = requested else { return Ok(granted.to_string()) };
    let granted: Vec<&str> = granted.split(' ').filter(|s| !s.is_empty()).collect();
    let mut out = Vec::new();
    for s in req.split(' ').filter(|s| !s.is_empty()) {
        if !granted.contains(&s) {
            return Err(OAuthError::invalid_scope("the requested scope exceeds the original grant"));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    if out.is_empty() {
        return Err(OAuthError::invalid_scope("the requested scope is empty"));
    }
    Ok(out.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    fn issued(dpop_jkt: Option<&'static str>) -> IssuedCode<'static> {
        IssuedCode { client_id: "c", redirect_uri: "https://c.example/cb", code_challenge: Some(CHALLENGE), dpop_jkt }
    }

    fn presented() -> CodeRedemption<'static> {
        CodeRedemption {
            client_id: "c",
            redirect_uri: Some("https://c.example/cb"),
            code_verifier: Some(VERIFIER),
            dpop_jkt: None,
        }
    }

    /// R6749-4.1.3: the code belongs to its client and its redirect URI, exactly.
    #[test]
    fn code_is_bound_to_client_and_redirect_uri() {
        assert!(check_code_redemption(&issued(None), &presented()).is_ok());
        let other = CodeRedemption { client_id: "d", ..presented() };
        assert_eq!(check_code_redemption(&issued(None), &other).unwrap_err().code, ErrorCode::InvalidGrant);
        for r in [None, Some("https://c.example/cb/"), Some("https://c.example/other")] {
            let p = CodeRedemption { redirect_uri: r, ..presented() };
            assert_eq!(check_code_redemption(&issued(None), &p).unwrap_err().code, ErrorCode::InvalidGrant, "{r:?}");
        }
    }

    /// R7636-4.6, R9700-2.1.1: the verifier must match the challenge; none, or one without
    /// a challenge, is `invalid_grant`.
    #[test]
    fn code_needs_the_matching_pkce_verifier() {
        let wrong = CodeRedemption { code_verifier: Some(&CHALLENGE[..43]), ..presented() };
        assert_eq!(check_code_redemption(&issued(None), &wrong).unwrap_err().code, ErrorCode::InvalidGrant);
        let missing = CodeRedemption { code_verifier: None, ..presented() };
        assert_eq!(check_code_redemption(&issued(None), &missing).unwrap_err().code, ErrorCode::InvalidGrant);
        let no_challenge = IssuedCode { code_challenge: None, ..issued(None) };
        assert_eq!(check_code_redemption(&no_challenge, &presented()).unwrap_err().code, ErrorCode::InvalidGrant);
    }

    /// F2SP-5.3.2.1-12, R9449-10: a DPoP-bound code needs a proof by that key; an unbound
    /// code accepts any proof (the token is then bound to it).
    #[test]
    fn dpop_bound_code_needs_a_proof_by_that_key() {
        let bound = issued(Some("jkt-a"));
        assert!(check_code_redemption(&bound, &CodeRedemption { dpop_jkt: Some("jkt-a"), ..presented() }).is_ok());
        for jkt in [None, Some("jkt-b")] {
            let p = CodeRedemption { dpop_jkt: jkt, ..presented() };
            assert_eq!(check_code_redemption(&bound, &p).unwrap_err().code, ErrorCode::InvalidDpopProof, "{jkt:?}");
        }
        assert!(
            check_code_redemption(&issued(None), &CodeRedemption { dpop_jkt: Some("jkt-b"), ..presented() }).is_ok()
        );
    }

    /// R6749-4.1.2-revoke: only a replayed code ends its grant.
    #[test]
    fn replayed_code_ends_the_grant() {
        assert!(refuse_code(UnusableCode::AlreadyUsed).revoke_grant);
        assert!(!refuse_code(UnusableCode::Expired).revoke_grant);
        assert!(!refuse_code(UnusableCode::Unknown).revoke_grant);
        assert_eq!(refuse_code(UnusableCode::Expired).error.code, ErrorCode::InvalidGrant);
    }

    /// F2SP-5.3.2.1-9, R9449-5-rt, R8705-3: the refreshed token keeps the grant's binding.
    #[test]
    fn refresh_keeps_binding() {
        let m = Binding::Mtls { x5t_s256: "a".into() };
        assert!(check_refresh_binding(&m, &Binding::Mtls { x5t_s256: "a".into() }).is_ok());
        assert!(check_refresh_binding(&m, &Binding::Mtls { x5t_s256: "b".into() }).is_err());
        let d = Binding::Dpop { jkt: "a".into() };
        assert!(check_refresh_binding(&d, &Binding::Dpop { jkt: "c".into() }).is_ok());
        assert!(check_refresh_binding(&d, &Binding::Bearer).is_err());
    }

    fn rt(revoked: bool, rotated_at: Option<i64>) -> RefreshTokenState<'static> {
        RefreshTokenState { client_id: "c", expires_at: 100, revoked, rotated_at }
    }

    /// R6749-6: only its client, before expiry, while not revoked.
    #[test]
    fn refresh_token_usable_by_its_client_before_expiry() {
        assert!(check_refresh_token(&rt(false, None), "c", 50, 0).is_ok());
        let other = check_refresh_token(&rt(false, None), "d", 50, 0).unwrap_err();
        assert_eq!((other.error.code, other.revoke_grant), (ErrorCode::InvalidGrant, false));
        assert!(!check_refresh_token(&rt(false, None), "c", 100, 0).unwrap_err().revoke_grant);
        assert!(!check_refresh_token(&rt(true, None), "c", 50, 0).unwrap_err().revoke_grant);
    }

    /// RFC 9700 §4.14.2: a rotated token presented again ends the grant.
    #[test]
    fn rotated_refresh_token_reuse_ends_the_grant() {
        let reuse = check_refresh_token(&rt(true, Some(40)), "c", 40, 0).unwrap_err();
        assert_eq!((reuse.error.code, reuse.revoke_grant), (ErrorCode::InvalidGrant, true));
        // Within the leeway: refused, the grant stays; after it: the grant ends.
        assert!(!check_refresh_token(&rt(true, Some(40)), "c", 44, 5).unwrap_err().revoke_grant);
        assert!(check_refresh_token(&rt(true, Some(40)), "c", 45, 5).unwrap_err().revoke_grant);
        // Another client presenting it cannot end someone else's grant.
        assert!(!check_refresh_token(&rt(true, Some(40)), "d", 90, 0).unwrap_err().revoke_grant);
    }

    /// F2SP-5.3.2.1-14: narrowing allowed, widening refused.
    #[test]
    fn scope_narrowing() {
        assert_eq!(narrow_scope("openid accounts", Some("accounts")).unwrap(), "accounts");
        assert_eq!(narrow_scope("openid accounts", None).unwrap(), "openid accounts");
        assert_eq!(narrow_scope("openid", Some("openid payments")).unwrap_err().code, ErrorCode::InvalidScope);
    }
}
