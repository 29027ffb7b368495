//! The server's signing keys: generated here, stored encrypted with the key-encryption
//! key, rotated in three states (next → active → retired) so a key is published before it
//! signs and stays published for an overlap after it stops.

use anyhow::{Context, anyhow};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use jsonwebtoken::jwk::JwkSet;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use strongroom_protocol::jose::{JwsAlg, LocalSigningKey};
use strongroom_protocol::random::random_token;
use strongroom_store::{KeyRecord, KeyState, SharedStore};

/// Encrypts and decrypts private key material at rest (AES-256-GCM, random nonce).
pub struct KeyEncryptionKey {
    key: LessSafeKey,
}

impl KeyEncryptionKey {
    /// From 32 raw bytes.
    pub fn new(bytes: &[u8; 32]) -> anyhow::Result<Self> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| anyhow!("bad key-encryption key"))?;
        Ok(KeyEncryptionKey { key: LessSafeKey::new(unbound) })
    }
    /// `nonce || ciphertext || tag`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| anyhow!("random failed"))?;
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf)
            .map_err(|_| anyhow!("encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }
    /// Reverses [`seal`](Self::seal); fails when the key or the associated data differ.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> anyhow::Result<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return Err(anyhow!("sealed data too short"));
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow!("bad nonce"))?;
        let mut buf = ct.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| anyhow!("cannot decrypt a signing key: wrong key-encryption key?"))?;
        Ok(plain.to_vec())
    }
}

struct Loaded {
    active: HashMap<JwsAlg, Arc<LocalSigningKey>>,
    published: Vec<Value>,
    /// The published signing keys, parsed once per reload (verification is a hot path).
    public: Arc<JwkSet>,
    decryption: Vec<DecryptionKey>,
}

/// JWE key-management algorithms of the server's encryption keys, with the signing
/// algorithm whose key type they share (RSA for RSA-OAEP-256, P-256 for ECDH-ES).
#[cfg(feature = "jwe")]
pub const ENCRYPTION_ALGS: &[(&str, JwsAlg)] = &[("RSA-OAEP-256", JwsAlg::PS256), ("ECDH-ES", JwsAlg::ES256)];
/// No encryption keys without the `jwe` feature.
#[cfg(not(feature = "jwe"))]
pub const ENCRYPTION_ALGS: &[(&str, JwsAlg)] = &[];

/// A private key for decrypting what clients encrypt to the server (request objects).
#[derive(Clone)]
pub struct DecryptionKey {
    /// Key id.
    pub kid: String,
    /// JWE `alg`.
    pub alg: String,
    /// PKCS#8 DER.
    pub pkcs8: Vec<u8>,
}

/// The signing keys in use, loaded from the store.
pub struct KeyRing {
    store: SharedStore,
    kek: KeyEncryptionKey,
    algs: Vec<JwsAlg>,
    overlap_secs: i64,
    loaded: RwLock<Loaded>,
}

fn parse_alg(s: &str) -> anyhow::Result<JwsAlg> {
    match JwsAlg::parse(s) {
        Some(a @ (JwsAlg::ES256 | JwsAlg::PS256 | JwsAlg::EdDSA)) => Ok(a),
        _ => Err(anyhow!("signing algorithm {s} is not supported")),
    }
}

impl KeyRing {
    /// Loads the keys, creating an active and a next key for each configured algorithm
    /// that has none.
    pub async fn open(
        store: SharedStore,
        kek: KeyEncryptionKey,
        algs: &[String],
        overlap_secs: u64,
        now: i64,
    ) -> anyhow::Result<Self> {
        let algs = algs.iter().map(|a| parse_alg(a)).collect::<anyhow::Result<Vec<_>>>()?;
        let ring = KeyRing {
            store,
            kek,
            algs,
            overlap_secs: i64::try_from(overlap_secs).unwrap_or(i64::MAX / 2),
            loaded: RwLock::new(Loaded {
                active: HashMap::new(),
                published: Vec::new(),
                public: Arc::new(JwkSet::default()),
                decryption: Vec::new(),
            }),
        };
        ring.ensure_keys(now).await?;
        ring.reload(now).await?;
        Ok(ring)
    }

    async fn ensure_keys(&self, now: i64) -> anyhow::Result<()> {
        let keys = self.store.list_keys().await?;
        for alg in &self.algs {
            for state in [KeyState::Active, KeyState::Next] {
                if !keys.iter().any(|k| k.alg == alg.as_str() && k.state == state) {
                    self.create_key(*alg, state, now).await?;
                }
            }
        }
        for (enc_alg, key_type) in ENCRYPTION_ALGS {
            if !keys.iter().any(|k| k.alg == *enc_alg && k.state == KeyState::Active) {
                self.create(enc_alg, *key_type, "enc", KeyState::Active, now).await?;
            }
        }
        Ok(())
    }

    async fn create_key(&self, alg: JwsAlg, state: KeyState, now: i64) -> anyhow::Result<String> {
        self.create(alg.as_str(), alg, "sig", state, now).await
    }

    /// Generates a key of `key_type`'s kind and stores it, sealed, under `stored_alg` with
    /// its public JWK. F2SP-6-keys: encryption keys (`use: enc`, a JWE `alg`) are separate
    /// keys from signing keys.
    async fn create(
        &self,
        stored_alg: &str,
        key_type: JwsAlg,
        key_use: &str,
        state: KeyState,
        now: i64,
    ) -> anyhow::Result<String> {
        let prefix =
            if key_use == "enc" { format!("enc-{}", stored_alg.to_lowercase()) } else { stored_alg.to_lowercase() };
        let kid = format!("{prefix}-{}", &random_token()[..12]);
        let (key, pkcs8) =
            LocalSigningKey::generate(kid.clone(), key_type).map_err(|e| anyhow!("key generation: {e}"))?;
        let mut public_jwk = key.public_jwk();
        public_jwk["use"] = key_use.into();
        public_jwk["alg"] = stored_alg.into();
        let record = KeyRecord {
            kid: kid.clone(),
            alg: stored_alg.to_string(),
            state,
            public_jwk,
            private_encrypted: self.kek.seal(&pkcs8, kid.as_bytes())?,
            created_at: now,
            state_changed_at: now,
        };
        self.store.insert_key(&record).await.context("storing a key")?;
        Ok(kid)
    }

    /// Re-reads the keys from the store (other nodes may have rotated).
    pub async fn reload(&self, now: i64) -> anyhow::Result<()> {
        let records = self.store.list_keys().await?;
        let mut active = HashMap::new();
        let mut published = Vec::new();
        let mut decryption = Vec::new();
        for r in &records {
            if ENCRYPTION_ALGS.iter().any(|(a, _)| *a == r.alg) {
                if r.state == KeyState::Active {
                    published.push(r.public_jwk.clone());
                    let pkcs8 = self.kek.open(&r.private_encrypted, r.kid.as_bytes())?;
                    decryption.push(DecryptionKey { kid: r.kid.clone(), alg: r.alg.clone(), pkcs8 });
                }
                continue;
            }
            let visible = match r.state {
                KeyState::Next => true,
                KeyState::Active => true,
                KeyState::Retired => now - r.state_changed_at < self.overlap_secs,
            };
            if visible {
                published.push(r.public_jwk.clone());
            }
            if r.state == KeyState::Active {
                let alg = parse_alg(&r.alg)?;
                let newer = active.get(&alg).map(|(t, _): &(i64, _)| *t < r.state_changed_at).unwrap_or(true);
                if newer {
                    let pkcs8 = self.kek.open(&r.private_encrypted, r.kid.as_bytes())?;
                    let key = LocalSigningKey::from_pkcs8(r.kid.clone(), alg, &pkcs8)
                        .map_err(|e| anyhow!("key {}: {e}", r.kid))?;
                    active.insert(alg, (r.state_changed_at, Arc::new(key)));
                }
            }
        }
        let active = active.into_iter().map(|(a, (_, k))| (a, k)).collect();
        let signing: Vec<Value> = published.iter().filter(|k| k["use"] == "sig").cloned().collect();
        let public = Arc::new(serde_json::from_value(json!({ "keys": signing }))?);
        let mut guard = self.loaded.write().map_err(|_| anyhow!("key ring lock poisoned"))?;
        *guard = Loaded { active, published, public, decryption };
        Ok(())
    }

    /// Promotes next → active, active → retired, and stages a new next key for every
    /// algorithm. Returns the kids now active.
    pub async fn rotate(&self, now: i64) -> anyhow::Result<Vec<String>> {
        let keys = self.store.list_keys().await?;
        let algs = self.algs.clone();
        self.rotate_algs(&keys, &algs, now).await
    }

    /// Rotates the given algorithms, given the stored keys read before.
    async fn rotate_algs(&self, keys: &[KeyRecord], algs: &[JwsAlg], now: i64) -> anyhow::Result<Vec<String>> {
        let mut activated = Vec::new();
        for alg in algs {
            let of_alg = |s: KeyState| keys.iter().filter(move |k| k.alg == alg.as_str() && k.state == s);
            for old in of_alg(KeyState::Active) {
                self.store.set_key_state(&old.kid, KeyState::Retired, now).await?;
            }
            match of_alg(KeyState::Next).next() {
                Some(next) => {
                    self.store.set_key_state(&next.kid, KeyState::Active, now).await?;
                    activated.push(next.kid.clone());
                }
                None => activated.push(self.create_key(*alg, KeyState::Active, now).await?),
            }
            self.create_key(*alg, KeyState::Next, now).await?;
        }
        // Retired keys past their overlap are no longer needed by any verifier.
        for old in keys.iter().filter(|k| k.state == KeyState::Retired && now - k.state_changed_at >= self.overlap_secs)
        {
            self.store.delete_key(&old.kid).await?;
        }
        self.reload(now).await?;
        Ok(activated)
    }

    /// Rotates every algorithm whose active key has been active for `every` seconds at `now`
    /// (the clock is the caller's, so tests can move it). Safe with several nodes on one
    /// store: a rotation first takes a lease per due active key (the key's kid, recorded
    /// once in the store) for all of them before it changes anything, and gives up at the
    /// first lease another node holds. So a node that reads the keys while another is half
    /// way through finds the remaining old keys already leased and rotates nothing; the
    /// others pick the new keys up at their next reload.
    pub async fn rotate_if_due(&self, now: i64, every: u64) -> anyhow::Result<bool> {
        let every = i64::try_from(every).unwrap_or(i64::MAX);
        let keys = self.store.list_keys().await?;
        let mut due: Vec<(JwsAlg, &KeyRecord)> = self
            .algs
            .iter()
            .filter_map(|alg| {
                keys.iter()
                    .filter(|k| k.state == KeyState::Active && k.alg == alg.as_str())
                    .max_by_key(|k| k.state_changed_at)
                    .filter(|k| now - k.state_changed_at >= every)
                    .map(|k| (*alg, k))
            })
            .collect();
        due.sort_by(|a, b| a.1.kid.cmp(&b.1.kid));
        let mut leased = Vec::new();
        for (alg, active) in &due {
            if !self.store.record_jti("key-rotation", &active.kid, now.saturating_add(every)).await? {
                break;
            }
            leased.push(*alg);
        }
        if leased.is_empty() {
            return Ok(false);
        }
        let activated = self.rotate_algs(&keys, &leased, now).await?;
        tracing::info!(?activated, "signing keys rotated automatically");
        Ok(true)
    }

    /// The active signer for an algorithm.
    pub fn signer(&self, alg: JwsAlg) -> Option<Arc<LocalSigningKey>> {
        self.loaded.read().ok()?.active.get(&alg).cloned()
    }

    /// The algorithms with an active key.
    pub fn algorithms(&self) -> Vec<JwsAlg> {
        self.algs.clone()
    }

    /// The published JWKS (active, next and recently retired keys).
    pub fn jwks(&self) -> Value {
        let keys = self.loaded.read().map(|l| l.published.clone()).unwrap_or_default();
        json!({ "keys": keys })
    }

    /// The published signing keys as a typed set, for verifying the server's own tokens.
    pub fn public_set(&self) -> Arc<JwkSet> {
        self.loaded.read().map(|l| l.public.clone()).unwrap_or_default()
    }

    /// The keys that decrypt what clients encrypt to the server.
    pub fn decryption_keys(&self) -> Vec<DecryptionKey> {
        self.loaded.read().map(|l| l.decryption.clone()).unwrap_or_default()
    }

    /// Every stored key, for `keys list`.
    pub async fn list(&self) -> anyhow::Result<Vec<KeyRecord>> {
        Ok(self.store.list_keys().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_need_the_same_kek_and_kid() {
        let kek = KeyEncryptionKey::new(&[7u8; 32]).unwrap();
        let sealed = kek.seal(b"private", b"kid-1").unwrap();
        assert_eq!(kek.open(&sealed, b"kid-1").unwrap(), b"private");
        assert!(kek.open(&sealed, b"kid-2").is_err());
        let other = KeyEncryptionKey::new(&[8u8; 32]).unwrap();
        assert!(other.open(&sealed, b"kid-1").is_err());
        assert!(!sealed.windows(7).any(|w| w == b"private"));
    }
}
