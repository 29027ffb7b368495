//! PKCE (RFC 7636) with `S256` only.

use crate::error::{OAuthError, OAuthResult};
use crate::jose::sha256_b64url;
use subtle::ConstantTimeEq;

/// F2SP-5.3.2.2-5, R7636-4.3-default, R7636-4.4.1: a challenge is present and its method
/// is `S256` (an absent method means `plain`, so it is refused too). The challenge itself
/// is a base64url SHA-256: 43 characters.
pub fn check_challenge(challenge: Option<&str>, method: Option<&str>, required: bool) -> OAuthResult<Option<String>> {
    match (challenge, method) {
        (None, None) if !required => Ok(None),
        (None, _) => Err(OAuthError::invalid_request("code_challenge is required")),
        (Some(_), None) => Err(OAuthError::invalid_request("code_challenge_method must be S256")),
        (Some(_), Some(m)) if m != "S256" => Err(OAuthError::invalid_request("code_challenge_method must be S256")),
        (Some(c), Some(_)) => {
            if c.len() != 43 || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return Err(OAuthError::invalid_request("code_challenge is not a base64url SHA-256 value"));
            }
            Ok(Some(c.to_string()))
        }
    }
}

/// R7636-4.1, R7636-4.6, R9700-2.1.1: the verifier has the right form and hashes to the
/// stored challenge; a verifier without a stored challenge (downgrade) and a stored
/// challenge without a verifier both fail with `invalid_grant`.
pub fn verify(verifier: Option<&str>, challenge: Option<&str>) -> OAuthResult<()> {
    match (verifier, challenge) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(OAuthError::invalid_grant("code_verifier sent but no code_challenge was used")),
        (None, Some(_)) => Err(OAuthError::invalid_grant("code_verifier is required")),
        (Some(v), Some(c)) => {
            let well_formed = (43..=128).contains(&v.len())
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
            if !well_formed {
                return Err(OAuthError::invalid_grant("code_verifier is malformed"));
            }
            if bool::from(sha256_b64url(v.as_bytes()).as_bytes().ct_eq(c.as_bytes())) {
                Ok(())
            } else {
                Err(OAuthError::invalid_grant("code_verifier does not match code_challenge"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    /// F2SP-5.3.2.2-5 / R7636-4.3-default.
    #[test]
    fn only_s256_challenges_are_accepted() {
        assert_eq!(check_challenge(Some(CHALLENGE), Some("S256"), true).unwrap(), Some(CHALLENGE.into()));
        for (c, m) in [
            (None, None),
            (Some(CHALLENGE), None),
            (Some(CHALLENGE), Some("plain")),
            (Some(CHALLENGE), Some("S512")),
            (Some("short"), Some("S256")),
        ] {
            assert_eq!(check_challenge(c, m, true).unwrap_err().code, ErrorCode::InvalidRequest);
        }
        assert_eq!(check_challenge(None, None, false).unwrap(), None);
    }

    /// R7636-4.6 with the RFC's own example; R7636-4.1 length; R9700-2.1.1 downgrade.
    #[test]
    fn verifier_checks() {
        verify(Some(VERIFIER), Some(CHALLENGE)).unwrap();
        let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj";
        assert_eq!(verify(Some(wrong), Some(CHALLENGE)).unwrap_err().code, ErrorCode::InvalidGrant);
        assert_eq!(verify(Some(&VERIFIER[..42]), Some(CHALLENGE)).unwrap_err().code, ErrorCode::InvalidGrant);
        assert_eq!(verify(Some(VERIFIER), None).unwrap_err().code, ErrorCode::InvalidGrant);
        assert_eq!(verify(None, Some(CHALLENGE)).unwrap_err().code, ErrorCode::InvalidGrant);
    }
}
