// Interop check for the message-signing profiles, with openid-client:
//
//   1. FAPI 2.0 Message Signing: a signed request object (JAR) pushed by PAR, DPoP, the
//      authorization response as JARM (`response_mode=jwt`) verified by the library;
//   2. FAPI 1.0 Advanced: a signed request object by value at the authorization endpoint,
//      JARM response, private_key_jwt (PS256) and a certificate-bound token over mTLS.
//
// Environment: SR_ISSUER, SR_CA_FILE, SR_REDIRECT_URI, SR_USER, SR_PASSWORD,
//   SR_MS_CLIENT_ID, SR_MS_KEY_FILE, SR_MS_KID (ES256),
//   SR_F1_CLIENT_ID, SR_F1_KEY_FILE, SR_F1_KID (PS256), SR_F1_CERT_FILE, SR_F1_CERT_KEY_FILE.

import { readFileSync } from 'node:fs';
import * as client from 'openid-client';
import * as jose from 'jose';
import { browse, env, fetchVia, issuer } from './browser.mjs';

async function configure(clientId, alg, kid, keyFile, metadata, fetchOptions) {
  const key = await jose.importPKCS8(readFileSync(keyFile, 'utf8'), alg);
  const options = { [client.customFetch]: fetchVia(fetchOptions) };
  const config = await client.discovery(
    issuer,
    clientId,
    { id_token_signed_response_alg: 'ES256', token_endpoint_auth_signing_alg: alg, authorization_signed_response_alg: 'ES256', ...metadata },
    client.PrivateKeyJwt({ key, kid }),
    options,
  );
  config[client.customFetch] = options[client.customFetch];
  client.useJwtResponseMode(config);
  return { config, signingKey: { key, kid } };
}

async function messageSigning() {
  const { config, signingKey } = await configure(env('SR_MS_CLIENT_ID'), 'ES256', env('SR_MS_KID'), env('SR_MS_KEY_FILE'), {}, {});
  const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const jar = await client.buildAuthorizationUrlWithJAR(config, {
    redirect_uri: env('SR_REDIRECT_URI'),
    scope: 'openid accounts',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  }, signingKey);
  const url = await client.buildAuthorizationUrlWithPAR(config, jar.searchParams, { DPoP });
  const callback = await browse(url.href);
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  }, undefined, { DPoP });
  return { callback_params: [...callback.searchParams.keys()], token_type: tokens.token_type, access_token: tokens.access_token, id_token_claims: tokens.claims() };
}

async function fapi1Advanced() {
  const { config, signingKey } = await configure(
    env('SR_F1_CLIENT_ID'), 'PS256', env('SR_F1_KID'), env('SR_F1_KEY_FILE'),
    { use_mtls_endpoint_aliases: true },
    { cert: readFileSync(env('SR_F1_CERT_FILE')), key: readFileSync(env('SR_F1_CERT_KEY_FILE')) },
  );
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = await client.buildAuthorizationUrlWithJAR(config, {
    redirect_uri: env('SR_REDIRECT_URI'), scope: 'openid accounts', state, nonce,
  }, signingKey);
  const callback = await browse(url.href);
  const tokens = await client.authorizationCodeGrant(config, callback, {
    expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  });
  return { callback_params: [...callback.searchParams.keys()], token_type: tokens.token_type, access_token: tokens.access_token, id_token_claims: tokens.claims() };
}

const result = {};
try {
  result.message_signing = await messageSigning();
  result.fapi1 = await fapi1Advanced();
} catch (e) {
  process.stderr.write(`interop signing flow failed: ${e?.name}: ${e?.message} ${e?.error ?? ''} ${e?.error_description ?? ''} ${e?.cause?.message ?? ''}\n`);
  process.exit(1);
}
process.stdout.write(`${JSON.stringify(result)}\n`);
