//! JWS and JWK handling: parsing compact JWS with our own checks (RFC 8725), verifying
//! signatures with `jsonwebtoken`, choosing a client key (F2SP-5.4.3), key-strength rules
//! (F2SP-5.4.1-2/3), RFC 7638 thumbprints, and the server's signer.
//!
//! Signing uses aws-lc-rs key pairs held in memory (parsed once), behind the
//! [`JwsSigner`] trait so an HSM can serve later.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The kinds of JWT Strongroom receives, each with its own `typ` (explicit typing,
/// RFC 8725 §3.11), so that a JWT issued for one purpose is never accepted for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtKind {
    /// A `private_key_jwt` client assertion (RFC 7523; `client-authentication+jwt` in
    /// draft-ietf-oauth-rfc7523bis, untyped or `JWT` in RFC 7523 itself).
    ClientAssertion,
    /// A request object (RFC 9101 §10.8: `oauth-authz-req+jwt`; FAPI 1.0 lets it be untyped).
    RequestObject,
    /// A DPoP proof (RFC 9449 §4.2: `dpop+jwt`, required).
    DpopProof,
    /// A JWT access token (RFC 9068 §2.1: `at+jwt`, required).
    AccessToken,
}

/// `typ` values that name a specific kind of JWT, normalised (see [`normalise_typ`]).
/// A JWT carrying one of these is only ever accepted as that kind.
const SPECIFIC_TYPS: &[&str] = &[
    "client-authentication+jwt",
    "oauth-authz-req+jwt",
    "dpop+jwt",
    "at+jwt",
    "token-introspection+jwt",
    "logout+jwt",
    "secevent+jwt",
    "jwt-idtoken",
    "oauth-authz-resp+jwt",
];

impl JwtKind {
    /// The kind's own `typ`, normalised.
    pub fn typ(self) -> &'static str {
        match self {
            JwtKind::ClientAssertion => "client-authentication+jwt",
            JwtKind::RequestObject => "oauth-authz-req+jwt",
            JwtKind::DpopProof => "dpop+jwt",
            JwtKind::AccessToken => "at+jwt",
        }
    }

    /// Whether the kind may also arrive untyped (no `typ`, or the generic `JWT`): client
    /// assertions under RFC 7523 and request objects under FAPI 1.0 / OIDC Core.
    fn may_be_untyped(self) -> bool {
        matches!(self, JwtKind::ClientAssertion | JwtKind::RequestObject)
    }
}

/// RFC 7515 §4.1.9: `typ` is a media type compared case-insensitively, and the
/// `application/` prefix may be left out.
pub fn normalise_typ(typ: &str) -> String {
    let lower = typ.trim().to_ascii_lowercase();
    match lower.strip_prefix("application/") {
        Some(rest) => rest.to_string(),
        None => lower,
    }
}

/// RFC 8725 §3.11 (explicit typing): the JWS header's `typ` must be `kind`'s own, or —
/// for kinds that may be untyped — absent or `JWT`. A `typ` naming any other kind of
/// JWT, or an unknown one, is refused, so a DPoP proof, access token, logout token or
/// request object is never taken as, say, a client credential.
pub fn check_explicit_type(typ: Option<&str>, kind: JwtKind) -> Result<(), &'static str> {
    let Some(typ) = typ else {
        return if kind.may_be_untyped() { Ok(()) } else { Err("the JWT has no typ") };
    };
    let typ = normalise_typ(typ);
    if typ == kind.typ() || (typ == "jwt" && kind.may_be_untyped()) {
        Ok(())
    } else if SPECIFIC_TYPS.contains(&typ.as_str()) {
        Err("the JWT typ names another kind of JWT")
    } else {
        Err("the JWT typ is not accepted here")
    }
}

/// JWS algorithms Strongroom knows. Anything else (`none`, `HS*`, …) never parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JwsAlg {
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (only for the plain `oauth2` profile).
    RS256,
}

impl JwsAlg {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            JwsAlg::PS256 => "PS256",
            JwsAlg::ES256 => "ES256",
            JwsAlg::EdDSA => "EdDSA",
            JwsAlg::RS256 => "RS256",
        }
    }
    /// Parses a wire name; unknown or unsupported names give `None`.
    pub fn parse(s: &str) -> Option<JwsAlg> {
        match s {
            "PS256" => Some(JwsAlg::PS256),
            "ES256" => Some(JwsAlg::ES256),
            "EdDSA" => Some(JwsAlg::EdDSA),
            "RS256" => Some(JwsAlg::RS256),
            _ => None,
        }
    }
    fn to_jwt(self) -> Algorithm {
        match self {
            JwsAlg::PS256 => Algorithm::PS256,
            JwsAlg::ES256 => Algorithm::ES256,
            JwsAlg::EdDSA => Algorithm::EdDSA,
            JwsAlg::RS256 => Algorithm::RS256,
        }
    }
    /// Whether a JWK's key type and curve can verify this algorithm.
    pub fn fits_key(self, jwk: &Jwk) -> bool {
        match (&jwk.algorithm, self) {
            (AlgorithmParameters::RSA(_), JwsAlg::PS256 | JwsAlg::RS256) => true,
            (AlgorithmParameters::EllipticCurve(ec), JwsAlg::ES256) => ec.curve == EllipticCurve::P256,
            (AlgorithmParameters::OctetKeyPair(okp), JwsAlg::EdDSA) => okp.curve == EllipticCurve::Ed25519,
            _ => false,
        }
    }
    /// Digest used for `at_hash`, `c_hash` and `s_hash` (OIDC Core §3.3.2.11): SHA-256
    /// for the 256-bit algorithms; SHA-512 for Ed25519.
    pub fn half_hash(self, value: &str) -> String {
        use aws_lc_rs::digest;
        let alg = match self {
            JwsAlg::EdDSA => &digest::SHA512,
            _ => &digest::SHA256,
        };
        let d = digest::digest(alg, value.as_bytes());
        let bytes = d.as_ref();
        b64url(&bytes[..bytes.len() / 2])
    }
}

/// Why a JWS was refused. Callers map this to their endpoint's OAuth error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    /// Not a compact JWS, bad base64 or bad JSON.
    #[error("malformed JWT: {0}")]
    Malformed(&'static str),
    /// Longer than the configured limit.
    #[error("JWT too large")]
    TooLarge,
    /// `alg` missing, `none`, symmetric or otherwise not accepted.
    #[error("algorithm not allowed: {0}")]
    AlgNotAllowed(String),
    /// The header carries a `crit` member (no extensions are understood).
    #[error("unsupported critical header")]
    Crit,
    /// No registered key fits the header.
    #[error("no matching key")]
    NoKey,
    /// The key is too weak for the profile.
    #[error("key too weak: {0}")]
    WeakKey(String),
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// Signing failed.
    #[error("signing failed")]
    Signing,
}

/// base64url without padding.
pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Decodes base64url without padding.
pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

/// base64url(SHA-256(data)), as used by PKCE, `x5t#S256`, `ath` and `jkt`.
pub fn sha256_b64url(data: &[u8]) -> String {
    b64url(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref())
}

/// A compact JWS split and decoded, signature not yet verified.
#[derive(Debug, Clone)]
pub struct ParsedJws {
    /// Protected header.
    pub header: Map<String, Value>,
    /// Payload claims.
    pub claims: Map<String, Value>,
    /// The header's algorithm.
    pub alg: JwsAlg,
    signing_input: String,
    signature: String,
}

impl ParsedJws {
    /// Parses a compact JWS. Refuses unknown algorithms (`none`, `HS256`, …), `crit`,
    /// and anything over `max_len` bytes (RFC 8725 §3.1).
    pub fn parse(token: &str, max_len: usize) -> Result<ParsedJws, JoseError> {
        if token.len() > max_len {
            return Err(JoseError::TooLarge);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(JoseError::Malformed("not a compact JWS"));
        };
        let header = decode_object(h).ok_or(JoseError::Malformed("header"))?;
        let claims = decode_object(p).ok_or(JoseError::Malformed("payload"))?;
        let alg_name = header.get("alg").and_then(Value::as_str).ok_or(JoseError::Malformed("alg"))?;
        let alg = JwsAlg::parse(alg_name).ok_or_else(|| JoseError::AlgNotAllowed(alg_name.to_string()))?;
        if header.contains_key("crit") {
            return Err(JoseError::Crit);
        }
        if s.is_empty() {
            return Err(JoseError::Malformed("empty signature"));
        }
        Ok(ParsedJws { header, claims, alg, signing_input: format!("{h}.{p}"), signature: s.to_string() })
    }

    /// A header member as a string.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }
    /// A claim as a string.
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }
    /// A claim as an integer (NumericDate); fractional values are truncated.
    pub fn claim_i64(&self, name: &str) -> Option<i64> {
        let v = self.claims.get(name)?;
        v.as_i64().or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
    }

    /// Verifies the signature with one JWK. The algorithm must fit the key.
    pub fn verify_with(&self, jwk: &Jwk) -> Result<(), JoseError> {
        if !self.alg.fits_key(jwk) {
            return Err(JoseError::NoKey);
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|_| JoseError::NoKey)?;
        match jsonwebtoken::crypto::verify(&self.signature, self.signing_input.as_bytes(), &key, self.alg.to_jwt()) {
            Ok(true) => Ok(()),
            _ => Err(JoseError::BadSignature),
        }
    }

    /// Verifies against a client's key set: keys are chosen by `kid` and by `kty`, `crv`,
    /// `use` and `alg` (F2SP-5.4.3), must be strong enough for the profile, and one must
    /// verify the signature.
    pub fn verify_with_set(&self, jwks: &JwkSet, min_rsa_bits: usize, min_ec_bits: usize) -> Result<(), JoseError> {
        let candidates = candidate_keys(jwks, self.header_str("kid"), self.alg);
        if candidates.is_empty() {
            return Err(JoseError::NoKey);
        }
        let mut last = JoseError::NoKey;
        for jwk in candidates {
            if let Err(e) = check_key_strength(jwk, min_rsa_bits, min_ec_bits) {
                last = e;
                continue;
            }
            match self.verify_with(jwk) {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

fn decode_object(segment: &str) -> Option<Map<String, Value>> {
    let bytes = b64url_decode(segment)?;
    match serde_json::from_slice::<Value>(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// Keys of a set that may have produced a signature: same `kid` when the header names
/// one, a key type and curve that fit the algorithm, `use` absent or `sig`, `alg` absent
/// or equal (F2SP-5.4.3 / F1A-8.11: duplicate `kid`s are told apart by these).
pub fn candidate_keys<'a>(jwks: &'a JwkSet, kid: Option<&str>, alg: JwsAlg) -> Vec<&'a Jwk> {
    jwks.keys
        .iter()
        .filter(|k| kid.is_none() || k.common.key_id.as_deref() == kid)
        .filter(|k| alg.fits_key(k))
        .filter(|k| matches!(k.common.public_key_use, None | Some(PublicKeyUse::Signature)))
        .filter(|k| match &k.common.key_algorithm {
            None => true,
            Some(a) => format!("{a:?}") == alg.as_str(),
        })
        .collect()
}

/// F2SP-5.4.1-2 / F2SP-5.4.1-3 / F1B-5.2.2-6: RSA moduli of at least `min_rsa_bits`,
/// EC keys of at least `min_ec_bits` (P-256 and Ed25519 are 256).
pub fn check_key_strength(jwk: &Jwk, min_rsa_bits: usize, min_ec_bits: usize) -> Result<(), JoseError> {
    match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let n = b64url_decode(&rsa.n).ok_or(JoseError::WeakKey("bad modulus".into()))?;
            let leading = n.iter().take_while(|b| **b == 0).count();
            let bytes = &n[leading..];
            let bits = bytes.len() * 8 - bytes.first().map(|b| b.leading_zeros() as usize).unwrap_or(0);
            if bits < min_rsa_bits {
                return Err(JoseError::WeakKey(format!("RSA key of {bits} bits")));
            }
            Ok(())
        }
        AlgorithmParameters::EllipticCurve(ec) => {
            let bits = match ec.curve {
                EllipticCurve::P256 => 256,
                EllipticCurve::P384 => 384,
                EllipticCurve::P521 => 521,
                _ => 0,
            };
            if bits < min_ec_bits {
                return Err(JoseError::WeakKey("EC curve".into()));
            }
            Ok(())
        }
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => Ok(()),
        _ => Err(JoseError::WeakKey("unsupported key type".into())),
    }
}

/// Members that only a private or symmetric JWK has. A DPoP header or a client's
/// registered key set carrying one is refused.
pub fn is_private_jwk(jwk: &Map<String, Value>) -> bool {
    ["d", "p", "q", "dp", "dq", "qi", "oth", "k"].iter().any(|m| jwk.contains_key(*m))
}

/// RFC 7638 JWK SHA-256 thumbprint.
pub fn jwk_thumbprint(jwk: &Jwk) -> Option<String> {
    jwk.thumbprint(ThumbprintHash::SHA256).ok()
}

/// Something that signs JWTs for the server: a key held in memory now, an HSM later.
pub trait JwsSigner: Send + Sync {
    /// The key id published in the JWKS.
    fn kid(&self) -> &str;
    /// The algorithm.
    fn alg(&self) -> JwsAlg;
    /// Signs `claims` as a compact JWS with `typ` (when given), `alg` and `kid`.
    fn sign(&self, typ: Option<&str>, claims: &Value) -> Result<String, JoseError>;
}

enum KeyMaterial {
    Ec(sig::EcdsaKeyPair),
    Ed(sig::Ed25519KeyPair),
    Rsa(sig::RsaKeyPair),
}

/// A signing key held in memory.
pub struct LocalSigningKey {
    kid: String,
    alg: JwsAlg,
    key: KeyMaterial,
    rng: SystemRandom,
}

impl std::fmt::Debug for LocalSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSigningKey").field("kid", &self.kid).field("alg", &self.alg).finish_non_exhaustive()
    }
}

impl LocalSigningKey {
    /// Generates a new key pair and returns it with its PKCS#8 DER (to store encrypted).
    /// RSA keys are 2048 bits (F2SP-5.4.1-2).
    pub fn generate(kid: impl Into<String>, alg: JwsAlg) -> Result<(LocalSigningKey, Vec<u8>), JoseError> {
        let rng = SystemRandom::new();
        let pkcs8: Vec<u8> = match alg {
            JwsAlg::ES256 => sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| JoseError::Signing)?
                .as_ref()
                .to_vec(),
            JwsAlg::EdDSA => {
                sig::Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| JoseError::Signing)?.as_ref().to_vec()
            }
            JwsAlg::PS256 | JwsAlg::RS256 => {
                use aws_lc_rs::encoding::AsDer;
                let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| JoseError::Signing)?;
                let der: aws_lc_rs::encoding::Pkcs8V1Der = kp.as_der().map_err(|_| JoseError::Signing)?;
                der.as_ref().to_vec()
            }
        };
        let key = Self::from_pkcs8(kid, alg, &pkcs8)?;
        Ok((key, pkcs8))
    }

    /// Loads a key from PKCS#8 DER.
    pub fn from_pkcs8(kid: impl Into<String>, alg: JwsAlg, pkcs8: &[u8]) -> Result<LocalSigningKey, JoseError> {
        let key = match alg {
            JwsAlg::ES256 => KeyMaterial::Ec(
                sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(|_| JoseError::Signing)?,
            ),
            JwsAlg::EdDSA => {
                KeyMaterial::Ed(sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(|_| JoseError::Signing)?)
            }
            JwsAlg::PS256 | JwsAlg::RS256 => {
                let kp = sig::RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| JoseError::Signing)?;
                if kp.public_modulus_len() * 8 < 2048 {
                    return Err(JoseError::WeakKey("RSA key under 2048 bits".into()));
                }
                KeyMaterial::Rsa(kp)
            }
        };
        Ok(LocalSigningKey { kid: kid.into(), alg, key, rng: SystemRandom::new() })
    }

    /// The public JWK, with `kid`, `use: sig` and `alg`.
    pub fn public_jwk(&self) -> Value {
        let mut m = Map::new();
        match &self.key {
            KeyMaterial::Ec(kp) => {
                let point = kp.public_key().as_ref();
                // Uncompressed SEC1 point: 0x04 || x || y.
                let (x, y) = point.get(1..).unwrap_or_default().split_at(32.min(point.len().saturating_sub(1)));
                m.insert("kty".into(), "EC".into());
                m.insert("crv".into(), "P-256".into());
                m.insert("x".into(), b64url(x).into());
                m.insert("y".into(), b64url(y).into());
            }
            KeyMaterial::Ed(kp) => {
                m.insert("kty".into(), "OKP".into());
                m.insert("crv".into(), "Ed25519".into());
                m.insert("x".into(), b64url(kp.public_key().as_ref()).into());
            }
            KeyMaterial::Rsa(kp) => {
                use aws_lc_rs::rsa::PublicKeyComponents;
                let comps: PublicKeyComponents<Vec<u8>> = kp.public_key().into();
                m.insert("kty".into(), "RSA".into());
                m.insert("n".into(), b64url(&comps.n).into());
                m.insert("e".into(), b64url(&comps.e).into());
            }
        }
        m.insert("kid".into(), self.kid.clone().into());
        m.insert("use".into(), "sig".into());
        m.insert("alg".into(), self.alg.as_str().into());
        Value::Object(m)
    }

    /// Signs raw bytes with this key (the JWS signature value).
    pub fn sign_bytes(&self, input: &[u8]) -> Result<Vec<u8>, JoseError> {
        match &self.key {
            KeyMaterial::Ec(kp) => Ok(kp.sign(&self.rng, input).map_err(|_| JoseError::Signing)?.as_ref().to_vec()),
            KeyMaterial::Ed(kp) => Ok(kp.sign(input).as_ref().to_vec()),
            KeyMaterial::Rsa(kp) => {
                let padding: &'static dyn sig::RsaEncoding = match self.alg {
                    JwsAlg::RS256 => &sig::RSA_PKCS1_SHA256,
                    _ => &sig::RSA_PSS_SHA256,
                };
                let mut out = vec![0u8; kp.public_modulus_len()];
                kp.sign(padding, &self.rng, input, &mut out).map_err(|_| JoseError::Signing)?;
                Ok(out)
            }
        }
    }
}

impl JwsSigner for LocalSigningKey {
    fn kid(&self) -> &str {
        &self.kid
    }
    fn alg(&self) -> JwsAlg {
        self.alg
    }
    fn sign(&self, typ: Option<&str>, claims: &Value) -> Result<String, JoseError> {
        let mut header = Map::new();
        header.insert("alg".into(), self.alg.as_str().into());
        header.insert("kid".into(), self.kid.clone().into());
        if let Some(t) = typ {
            header.insert("typ".into(), t.into());
        }
        sign_with_header(self, &Value::Object(header), claims)
    }
}

/// Signs `claims` under an explicit protected header (the caller sets `alg` to match).
pub fn sign_with_header(key: &LocalSigningKey, header: &Value, claims: &Value) -> Result<String, JoseError> {
    let h = b64url(&serde_json::to_vec(header).map_err(|_| JoseError::Signing)?);
    let p = b64url(&serde_json::to_vec(claims).map_err(|_| JoseError::Signing)?);
    let input = format!("{h}.{p}");
    let s = key.sign_bytes(input.as_bytes())?;
    Ok(format!("{input}.{}", b64url(&s)))
}

/// Parses a JWK from JSON, refusing private members.
pub fn public_jwk_from_value(v: &Value) -> Option<Jwk> {
    let obj = v.as_object()?;
    if is_private_jwk(obj) {
        return None;
    }
    serde_json::from_value(v.clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set_of(keys: &[&LocalSigningKey]) -> JwkSet {
        serde_json::from_value(json!({"keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>()})).unwrap()
    }

    #[test]
    fn each_algorithm_signs_and_verifies() {
        for alg in [JwsAlg::ES256, JwsAlg::PS256, JwsAlg::EdDSA] {
            let (key, pkcs8) = LocalSigningKey::generate("k1", alg).unwrap();
            let reloaded = LocalSigningKey::from_pkcs8("k1", alg, &pkcs8).unwrap();
            let token = reloaded.sign(Some("JWT"), &json!({"sub": "x"})).unwrap();
            let parsed = ParsedJws::parse(&token, 16_384).unwrap();
            assert_eq!(parsed.alg, alg);
            assert_eq!(parsed.claim_str("sub"), Some("x"));
            parsed.verify_with_set(&set_of(&[&key]), 2048, 224).unwrap();
        }
    }

    #[test]
    fn tampered_payload_fails() {
        let (key, _) = LocalSigningKey::generate("k1", JwsAlg::ES256).unwrap();
        let token = key.sign(None, &json!({"sub": "alice"})).unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        parts[1] = b64url(br#"{"sub":"mallory"}"#);
        let forged = parts.join(".");
        let parsed = ParsedJws::parse(&forged, 16_384).unwrap();
        assert_eq!(parsed.verify_with_set(&set_of(&[&key]), 2048, 224), Err(JoseError::BadSignature));
    }

    /// F2SP-5.4.1-1.3, RFC 8725 §3.1: `none` and symmetric algorithms never parse.
    #[test]
    fn none_and_hs256_are_refused() {
        for alg in ["none", "HS256", "RS512", ""] {
            let h = b64url(json!({"alg": alg}).to_string().as_bytes());
            let p = b64url(b"{}");
            let err = ParsedJws::parse(&format!("{h}.{p}.c2ln"), 1000).unwrap_err();
            assert!(matches!(err, JoseError::AlgNotAllowed(_)), "{alg}: {err:?}");
        }
    }

    #[test]
    fn crit_and_oversize_are_refused() {
        let h = b64url(json!({"alg": "ES256", "crit": ["b64"]}).to_string().as_bytes());
        assert_eq!(ParsedJws::parse(&format!("{h}.e30.c2ln"), 1000).unwrap_err(), JoseError::Crit);
        assert_eq!(ParsedJws::parse(&"a".repeat(2000), 1000).unwrap_err(), JoseError::TooLarge);
        assert!(matches!(ParsedJws::parse("a.b", 1000), Err(JoseError::Malformed(_))));
    }

    /// F2SP-5.4.3: with duplicate `kid`s the key is chosen by type and curve too.
    #[test]
    fn duplicate_kid_is_resolved_by_key_type() {
        let (ec, _) = LocalSigningKey::generate("same", JwsAlg::ES256).unwrap();
        let (rsa, _) = LocalSigningKey::generate("same", JwsAlg::PS256).unwrap();
        let set = set_of(&[&rsa, &ec]);
        let token = ec.sign(None, &json!({})).unwrap();
        let parsed = ParsedJws::parse(&token, 16_384).unwrap();
        assert_eq!(candidate_keys(&set, Some("same"), JwsAlg::ES256).len(), 1);
        parsed.verify_with_set(&set, 2048, 224).unwrap();
    }

    /// F2SP-5.4.1-2: RSA keys under 2048 bits are refused.
    #[test]
    fn weak_rsa_key_is_refused() {
        let n = b64url(&[0xffu8; 128]); // 1024 bits
        let jwk: Jwk = serde_json::from_value(json!({"kty": "RSA", "n": n, "e": "AQAB"})).unwrap();
        assert!(matches!(check_key_strength(&jwk, 2048, 224), Err(JoseError::WeakKey(_))));
        let n = b64url(&[0xffu8; 256]);
        let jwk: Jwk = serde_json::from_value(json!({"kty": "RSA", "n": n, "e": "AQAB"})).unwrap();
        assert!(check_key_strength(&jwk, 2048, 224).is_ok());
    }

    #[test]
    fn private_jwks_are_detected() {
        let v = json!({"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "secret"});
        assert!(is_private_jwk(v.as_object().unwrap()));
        assert!(public_jwk_from_value(&v).is_none());
    }

    /// RFC 7638 §3.1 example thumbprint.
    #[test]
    fn rfc7638_example_thumbprint() {
        let jwk: Jwk = serde_json::from_value(json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        })).unwrap();
        assert_eq!(jwk_thumbprint(&jwk).unwrap(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    /// OIDC Core §3.3.2.11: left half of the hash, base64url.
    /// RFC 8725 §3.11: each kind accepts its own typ (any case, with or without
    /// `application/`), untyped only where the kind allows it, and never another kind's.
    #[test]
    fn explicit_typing_keeps_kinds_apart() {
        use JwtKind::*;
        for kind in [ClientAssertion, RequestObject, DpopProof, AccessToken] {
            assert_eq!(check_explicit_type(Some(kind.typ()), kind), Ok(()), "{kind:?}");
            let upper = format!("application/{}", kind.typ().to_uppercase());
            assert_eq!(check_explicit_type(Some(&upper), kind), Ok(()), "{kind:?}");
            for other in [ClientAssertion, RequestObject, DpopProof, AccessToken] {
                if other != kind {
                    assert!(check_explicit_type(Some(other.typ()), kind).is_err(), "{other:?} as {kind:?}");
                }
            }
            for foreign in ["logout+jwt", "secevent+jwt", "token-introspection+jwt", "text/plain"] {
                assert!(check_explicit_type(Some(foreign), kind).is_err(), "{foreign} as {kind:?}");
            }
        }
        for kind in [ClientAssertion, RequestObject] {
            assert_eq!(check_explicit_type(None, kind), Ok(()));
            assert_eq!(check_explicit_type(Some("JWT"), kind), Ok(()));
        }
        for kind in [DpopProof, AccessToken] {
            assert!(check_explicit_type(None, kind).is_err());
            assert!(check_explicit_type(Some("JWT"), kind).is_err());
        }
    }

    #[test]
    fn half_hash_lengths() {
        assert_eq!(b64url_decode(&JwsAlg::ES256.half_hash("abc")).unwrap().len(), 16);
        assert_eq!(b64url_decode(&JwsAlg::EdDSA.half_hash("abc")).unwrap().len(), 32);
    }
}
