// Interop check: an independent OAuth client library (openid-client by panva, on
// oauth4webapi and jose) obtains client_credentials tokens from a Strongroom server:
//
//   1. private_key_jwt + DPoP on the public token endpoint (a fresh DPoP key pair made
//      by openid-client; server DPoP nonces are handled by the library's retry);
//   2. tls_client_auth over mTLS, on the endpoint aliases from discovery
//      (`use_mtls_endpoint_aliases`), the client certificate set on an undici Agent.
//
// Each client then introspects its own token with the library. The result is printed as
// one JSON object on stdout; the Rust test (tests/tests/interop.rs) checks the bindings.
//
// Environment:
//   SR_ISSUER             issuer URL (https://localhost:PORT)
//   SR_CA_FILE            PEM of the CA that issued the server certificate
//   SR_PKJWT_CLIENT_ID    private_key_jwt client (optional: skipped when unset)
//   SR_PKJWT_KEY_FILE     its private key, PKCS#8 PEM
//   SR_PKJWT_KID          the key's kid
//   SR_PKJWT_ALG          the key's JWS algorithm (default ES256)
//   SR_DPOP_ALG           DPoP key algorithm (default ES256)
//   SR_MTLS_CLIENT_ID     tls_client_auth client (optional: skipped when unset)
//   SR_MTLS_CERT_FILE     its certificate, PEM
//   SR_MTLS_KEY_FILE      its private key, PEM

import { readFileSync } from 'node:fs';
import { X509Certificate, createHash } from 'node:crypto';
import * as client from 'openid-client';
import * as jose from 'jose';
import { Agent, fetch as undiciFetch } from 'undici';

const env = (name, fallback) => {
  const v = process.env[name];
  if (v === undefined || v === '') {
    if (fallback !== undefined) return fallback;
    throw new Error(`${name} is not set`);
  }
  return v;
};

const issuer = new URL(env('SR_ISSUER'));
const ca = readFileSync(env('SR_CA_FILE'));

// The server listens on 127.0.0.1; "localhost" may resolve to ::1 first.
const lookup = (hostname, options, callback) => {
  if (options && options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
  else callback(null, '127.0.0.1', 4);
};

/** Every request the library made: method, URL, status, whether a DPoP proof was sent
 * and the `DPoP-Nonce` the server returned, so the Rust test can see the exchange. */
const exchanges = [];

/** A fetch that trusts only the test CA (and presents a client certificate when given). */
function fetchVia(connect) {
  const dispatcher = new Agent({ connect: { ca, lookup, ...connect } });
  return async (url, options) => {
    const response = await undiciFetch(url, { ...options, dispatcher });
    const headers = new Headers(options?.headers);
    exchanges.push({
      method: options?.method ?? 'GET',
      url: String(url),
      status: response.status,
      dpop: headers.has('dpop'),
      dpop_nonce: response.headers.get('dpop-nonce'),
    });
    return response;
  };
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');

async function privateKeyJwtWithDpop() {
  const clientId = env('SR_PKJWT_CLIENT_ID');
  const alg = env('SR_PKJWT_ALG', 'ES256');
  const key = await jose.importPKCS8(readFileSync(env('SR_PKJWT_KEY_FILE'), 'utf8'), alg);
  const options = { [client.customFetch]: fetchVia({}) };
  const config = await client.discovery(
    issuer,
    clientId,
    { token_endpoint_auth_signing_alg: alg },
    client.PrivateKeyJwt({ key, kid: env('SR_PKJWT_KID') }),
    options,
  );
  config[client.customFetch] = options[client.customFetch];

  const dpopKeys = await client.randomDPoPKeyPair(env('SR_DPOP_ALG', 'ES256'));
  const DPoP = client.getDPoPHandle(config, dpopKeys);
  const tokens = await client.clientCredentialsGrant(config, {}, { DPoP });
  const jkt = await jose.calculateJwkThumbprint(await jose.exportJWK(dpopKeys.publicKey), 'sha256');
  const introspection = await client.tokenIntrospection(config, tokens.access_token);
  return {
    token_endpoint: config.serverMetadata().token_endpoint,
    token_response: { ...tokens },
    dpop_jkt: jkt,
    introspection,
  };
}

async function tlsClientAuth() {
  const clientId = env('SR_MTLS_CLIENT_ID');
  const certPem = readFileSync(env('SR_MTLS_CERT_FILE'));
  const keyPem = readFileSync(env('SR_MTLS_KEY_FILE'));
  const options = { [client.customFetch]: fetchVia({ cert: certPem, key: keyPem }) };
  const config = await client.discovery(
    issuer,
    clientId,
    { use_mtls_endpoint_aliases: true },
    client.TlsClientAuth(),
    options,
  );
  config[client.customFetch] = options[client.customFetch];
  const tokens = await client.clientCredentialsGrant(config, {});
  const x5t = b64url(createHash('sha256').update(new X509Certificate(certPem).raw).digest());
  const introspection = await client.tokenIntrospection(config, tokens.access_token);
  return {
    token_endpoint: config.serverMetadata().mtls_endpoint_aliases?.token_endpoint,
    token_response: { ...tokens },
    cert_x5t_s256: x5t,
    introspection,
  };
}

function describe(e) {
  const out = { name: e?.name, message: e?.message, code: e?.code };
  if (e?.error) out.error = e.error;
  if (e?.error_description) out.error_description = e.error_description;
  if (e?.cause) out.cause = String(e.cause?.message ?? e.cause);
  return out;
}

const result = { exchanges };
try {
  if (process.env.SR_PKJWT_CLIENT_ID) result.dpop = await privateKeyJwtWithDpop();
  if (process.env.SR_MTLS_CLIENT_ID) result.mtls = await tlsClientAuth();
} catch (e) {
  process.stderr.write(`interop client failed: ${JSON.stringify(describe(e))}\n`);
  process.exit(1);
}
process.stdout.write(`${JSON.stringify(result)}\n`);
