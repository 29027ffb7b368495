// Independent JOSE check: verifies a JWT issued by Strongroom with the `jose` library
// against a JWK Set, and computes OIDC half hashes (c_hash, s_hash, at_hash) with Node's
// own crypto, so the Rust tests do not only agree with themselves.
//
// stdin: {"jwks": {...}, "token": "...", "algorithms": ["PS256", ...], "hash_inputs": {"c_hash": "...", ...}}
// stdout: {"header": {...}, "payload": {...}, "hashes": {"c_hash": "...", ...}}
import { createLocalJWKSet, jwtVerify } from 'jose';
import { createHash } from 'node:crypto';

const input = JSON.parse(await new Promise((resolve, reject) => {
  let data = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (c) => { data += c; });
  process.stdin.on('end', () => resolve(data));
  process.stdin.on('error', reject);
}));

const jwks = createLocalJWKSet(input.jwks);
const { payload, protectedHeader } = await jwtVerify(input.token, jwks, { algorithms: input.algorithms });

// OIDC Core 3.3.2.11: left half of the hash the signing algorithm uses (SHA-512 for Ed25519).
const digest = protectedHeader.alg === 'EdDSA' ? 'sha512' : 'sha256';
const hashes = {};
for (const [name, value] of Object.entries(input.hash_inputs ?? {})) {
  const full = createHash(digest).update(value, 'ascii').digest();
  hashes[name] = full.subarray(0, full.length / 2).toString('base64url');
}
process.stdout.write(JSON.stringify({ header: protectedHeader, payload, hashes }));
