//! DPoP proofs (RFC 9449 §4.3) and server-issued DPoP nonces (§8, §9).

use crate::error::{ErrorCode, OAuthError, OAuthResult};
use crate::jose::{JwsAlg, ParsedJws, b64url, jwk_thumbprint, public_jwk_from_value, sha256_b64url};
use aws_lc_rs::hmac;

/// RFC 9449 §11.1: how old a proof may be. Short, so a captured proof is soon useless.
pub const MAX_PROOF_AGE: i64 = 120;

/// Whether a nonce must be present, and how to judge it.
#[derive(Clone, Copy)]
pub enum NonceRule<'a> {
    /// No nonce demanded.
    NotRequired,
    /// A recent nonce from this issuer is demanded (R9449-8).
    Required(&'a NonceIssuer),
}

/// What the request looked like, to compare the proof with.
#[derive(Clone, Copy)]
pub struct ProofContext<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// The URL the request was sent to (query and fragment are ignored).
    pub url: &'a str,
    /// Current time.
    pub now: i64,
    /// F2SP-5.3.2.1-13(DPoP): seconds `iat` may lie in the future.
    pub max_future_skew: i64,
    /// Algorithms allowed.
    pub allowed_algs: &'a [JwsAlg],
    /// At a resource: the access token the proof must be bound to (`ath`).
    pub access_token: Option<&'a str>,
    /// Nonce rule.
    pub nonce: NonceRule<'a>,
    /// Size limit for the proof JWT.
    pub max_len: usize,
}

/// A proof that passed every check but the `jti` replay check, which the caller makes
/// atomically in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopProof {
    /// RFC 7638 thumbprint of the proof's key: the `cnf.jkt` binding.
    pub jkt: String,
    /// The proof's `jti`.
    pub jti: String,
    /// Until when the `jti` must be remembered.
    pub replay_until: i64,
}

fn invalid(d: &'static str) -> OAuthError {
    OAuthError::invalid_dpop_proof(d)
}

/// R9449-4.3, R9449-11.1, R9449-11.5/11.6, F2SP-5.3.2.1-13(DPoP), R9449-7.1, R9449-8:
/// checks one DPoP proof completely — `typ`, algorithm, a public `jwk` only, signature,
/// `htm`, `htu`, `iat` window, `jti` present, `ath` when an access token is presented,
/// `nonce` when demanded.
pub fn check_proof(proof: &str, ctx: &ProofContext<'_>) -> OAuthResult<DpopProof> {
    let jws = ParsedJws::parse(proof, ctx.max_len).map_err(|_| invalid("the DPoP proof is not a valid JWT"))?;
    if !ctx.allowed_algs.contains(&jws.alg) {
        return Err(invalid("the DPoP proof algorithm is not allowed"));
    }
    if jws.header_str("typ") != Some("dpop+jwt") {
        return Err(invalid("the DPoP proof typ must be dpop+jwt"));
    }
    let jwk_value = jws.header.get("jwk").ok_or_else(|| invalid("the DPoP proof has no jwk"))?;
    let jwk = public_jwk_from_value(jwk_value).ok_or_else(|| invalid("the DPoP proof jwk must be a public key"))?;
    jws.verify_with(&jwk).map_err(|_| invalid("the DPoP proof signature does not verify"))?;
    if jws.claim_str("htm") != Some(ctx.method) {
        return Err(invalid("htm does not match the request method"));
    }
    let htu = jws.claim_str("htu").ok_or_else(|| invalid("htu is missing"))?;
    if !same_target_uri(htu, ctx.url) {
        return Err(invalid("htu does not match the request URL"));
    }
    let iat = jws.claim_i64("iat").ok_or_else(|| invalid("iat is missing"))?;
    if iat > ctx.now + ctx.max_future_skew {
        return Err(invalid("iat is in the future"));
    }
    if iat < ctx.now - MAX_PROOF_AGE {
        return Err(invalid("the DPoP proof is too old"));
    }
    let jti =
        jws.claim_str("jti").filter(|j| !j.is_empty() && j.len() <= 256).ok_or_else(|| invalid("jti is missing"))?;
    if let Some(token) = ctx.access_token {
        let ath = jws.claim_str("ath").ok_or_else(|| invalid("ath is missing"))?;
        if ath != sha256_b64url(token.as_bytes()) {
            return Err(invalid("ath does not match the access token"));
        }
    }
    if let NonceRule::Required(issuer) = ctx.nonce {
        match jws.claim_str("nonce") {
            Some(n) if issuer.is_valid(n, ctx.now) => {}
            _ => return Err(OAuthError::new(ErrorCode::UseDpopNonce, "a fresh DPoP nonce is required")),
        }
    }
    let jkt = jwk_thumbprint(&jwk).ok_or_else(|| invalid("the DPoP proof jwk has no thumbprint"))?;
    Ok(DpopProof { jkt, jti: jti.to_string(), replay_until: iat + MAX_PROOF_AGE + ctx.max_future_skew })
}

/// RFC 9449 §4.3 item 9: compare `htu` with the request URI without query and fragment,
/// after syntax-based normalization (case of scheme and host, default port).
pub fn same_target_uri(htu: &str, request_url: &str) -> bool {
    let (Ok(a), Ok(b)) = (url::Url::parse(htu), url::Url::parse(request_url)) else { return false };
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
        && a.path() == b.path()
}

/// Server-issued DPoP nonces: an HMAC of the current time window, so every node that
/// shares the secret issues and accepts the same values without shared state. A nonce is
/// accepted during its window and the next one.
pub struct NonceIssuer {
    key: hmac::Key,
    rotation_secs: i64,
}

impl std::fmt::Debug for NonceIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceIssuer").field("rotation_secs", &self.rotation_secs).finish_non_exhaustive()
    }
}

impl NonceIssuer {
    /// A nonce issuer from a secret (derived from the key-encryption key) and a rotation.
    pub fn new(secret: &[u8], rotation_secs: u64) -> NonceIssuer {
        NonceIssuer {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            rotation_secs: i64::try_from(rotation_secs.max(1)).unwrap_or(60),
        }
    }
    fn for_window(&self, window: i64) -> String {
        b64url(hmac::sign(&self.key, &window.to_be_bytes()).as_ref())
    }
    /// The nonce to hand out now (`DPoP-Nonce`).
    pub fn current(&self, now: i64) -> String {
        self.for_window(now.div_euclid(self.rotation_secs))
    }
    /// Whether a nonce was issued in this window or the previous one.
    pub fn is_valid(&self, nonce: &str, now: i64) -> bool {
        let w = now.div_euclid(self.rotation_secs);
        let a = self.for_window(w);
        let b = self.for_window(w - 1);
        use subtle::ConstantTimeEq;
        bool::from(nonce.as_bytes().ct_eq(a.as_bytes())) || bool::from(nonce.as_bytes().ct_eq(b.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::{LocalSigningKey, sign_with_header};
    use serde_json::{Value, json};

    const NOW: i64 = 1_800_000_000;
    const URL: &str = "https://as.example/token";
    const ALGS: &[JwsAlg] = &[JwsAlg::ES256, JwsAlg::PS256, JwsAlg::EdDSA];

    fn ctx<'a>(token: Option<&'a str>, nonce: NonceRule<'a>) -> ProofContext<'a> {
        ProofContext {
            method: "POST",
            url: URL,
            now: NOW,
            max_future_skew: 10,
            allowed_algs: ALGS,
            access_token: token,
            nonce,
            max_len: 8192,
        }
    }

    fn proof(key: &LocalSigningKey, header_extra: Value, claims: Value) -> String {
        let mut header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk()});
        for (k, v) in header_extra.as_object().unwrap() {
            if v.is_null() {
                header.as_object_mut().unwrap().remove(k);
            } else {
                header[k] = v.clone();
            }
        }
        sign_with_header(key, &header, &claims).unwrap()
    }

    fn claims() -> Value {
        json!({"jti": "p1", "htm": "POST", "htu": URL, "iat": NOW})
    }

    fn key() -> LocalSigningKey {
        LocalSigningKey::generate("d", JwsAlg::ES256).unwrap().0
    }

    #[test]
    fn valid_proof_gives_thumbprint() {
        let k = key();
        let p = check_proof(&proof(&k, json!({}), claims()), &ctx(None, NonceRule::NotRequired)).unwrap();
        let jwk = public_jwk_from_value(&k.public_jwk()).unwrap();
        assert_eq!(p.jkt, jwk_thumbprint(&jwk).unwrap());
        assert_eq!(p.jti, "p1");
    }

    /// R9449-4.3: each malformed-proof case is `invalid_dpop_proof`.
    #[test]
    fn malformed_proofs_are_refused() {
        let k = key();
        let mut private_jwk = k.public_jwk();
        private_jwk["d"] = json!("c2VjcmV0");
        let cases: Vec<(&str, Value, Value)> = vec![
            ("typ", json!({"typ": "JWT"}), claims()),
            ("no typ", json!({"typ": null}), claims()),
            ("no jwk", json!({"jwk": null}), claims()),
            ("private jwk", json!({"jwk": private_jwk}), claims()),
            ("htm", json!({}), json!({"jti": "p1", "htm": "GET", "htu": URL, "iat": NOW})),
            ("htu", json!({}), json!({"jti": "p1", "htm": "POST", "htu": "https://as.example/other", "iat": NOW})),
            ("stale iat", json!({}), json!({"jti": "p1", "htm": "POST", "htu": URL, "iat": NOW - 600})),
            ("future iat", json!({}), json!({"jti": "p1", "htm": "POST", "htu": URL, "iat": NOW + 61})),
            ("no jti", json!({}), json!({"htm": "POST", "htu": URL, "iat": NOW})),
            ("no iat", json!({}), json!({"jti": "p1", "htm": "POST", "htu": URL})),
        ];
        for (name, h, c) in cases {
            let err = check_proof(&proof(&k, h, c), &ctx(None, NonceRule::NotRequired)).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidDpopProof, "{name}");
        }
        // Signed by another key than the one in the header.
        let other = key();
        let forged =
            sign_with_header(&other, &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": k.public_jwk()}), &claims())
                .unwrap();
        assert_eq!(
            check_proof(&forged, &ctx(None, NonceRule::NotRequired)).unwrap_err().code,
            ErrorCode::InvalidDpopProof
        );
        // RS256 and HS256 are not allowed.
        let (rsa, _) = LocalSigningKey::generate("r", JwsAlg::RS256).unwrap();
        let p = sign_with_header(&rsa, &json!({"typ": "dpop+jwt", "alg": "RS256", "jwk": rsa.public_jwk()}), &claims())
            .unwrap();
        assert_eq!(check_proof(&p, &ctx(None, NonceRule::NotRequired)).unwrap_err().code, ErrorCode::InvalidDpopProof);
    }

    /// F2SP-5.3.2.1-13(DPoP): +10 s accepted.
    #[test]
    fn iat_ten_seconds_ahead_is_accepted() {
        let k = key();
        let c = json!({"jti": "p1", "htm": "POST", "htu": URL, "iat": NOW + 10});
        assert!(check_proof(&proof(&k, json!({}), c), &ctx(None, NonceRule::NotRequired)).is_ok());
    }

    /// R9449-7.1: `ath` is required and must match at a resource.
    #[test]
    fn ath_rules() {
        let k = key();
        let token = "the-access-token";
        let err = check_proof(&proof(&k, json!({}), claims()), &ctx(Some(token), NonceRule::NotRequired)).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidDpopProof);
        let mut c = claims();
        c["ath"] = json!(sha256_b64url(b"another-token"));
        assert!(check_proof(&proof(&k, json!({}), c.clone()), &ctx(Some(token), NonceRule::NotRequired)).is_err());
        c["ath"] = json!(sha256_b64url(token.as_bytes()));
        assert!(check_proof(&proof(&k, json!({}), c), &ctx(Some(token), NonceRule::NotRequired)).is_ok());
    }

    /// R9449-8 / R9449-11.3: nonce demanded, wrong or missing nonce is `use_dpop_nonce`.
    #[test]
    fn nonce_rules() {
        let issuer = NonceIssuer::new(b"secret", 60);
        let k = key();
        let err = check_proof(&proof(&k, json!({}), claims()), &ctx(None, NonceRule::Required(&issuer))).unwrap_err();
        assert_eq!(err.code, ErrorCode::UseDpopNonce);
        let mut c = claims();
        c["nonce"] = json!("made-up");
        assert_eq!(
            check_proof(&proof(&k, json!({}), c.clone()), &ctx(None, NonceRule::Required(&issuer))).unwrap_err().code,
            ErrorCode::UseDpopNonce
        );
        c["nonce"] = json!(issuer.current(NOW));
        assert!(check_proof(&proof(&k, json!({}), c), &ctx(None, NonceRule::Required(&issuer))).is_ok());
        // Rotation: accepted in the next window, not after that.
        let n = issuer.current(NOW);
        assert!(issuer.is_valid(&n, NOW + 60));
        assert!(!issuer.is_valid(&n, NOW + 180));
        assert_ne!(issuer.current(NOW), issuer.current(NOW + 120));
    }

    #[test]
    fn htu_normalization() {
        assert!(same_target_uri("https://AS.example:443/token", "https://as.example/token?x=1"));
        assert!(same_target_uri("https://as.example/token#f", "https://as.example/token"));
        assert!(!same_target_uri("https://as.example:8443/token", "https://as.example/token"));
        assert!(!same_target_uri("http://as.example/token", "https://as.example/token"));
    }
}
