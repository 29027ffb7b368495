// Interop check: openid-client (an independent, certified client library) runs complete
// FAPI 2.0 authorization code flows against Strongroom: PAR, PKCE S256, `iss` checked in
// the authorization response (RFC 9207), ID token validated by the library, then UserInfo.
//
//   1. private_key_jwt + DPoP (the code and the tokens bound to the library's DPoP key);
//   2. tls_client_auth over mTLS on the endpoint aliases from discovery.
//
// Environment: SR_ISSUER, SR_CA_FILE, SR_REDIRECT_URI, SR_USER, SR_PASSWORD,
//   SR_PKJWT_CLIENT_ID, SR_PKJWT_KEY_FILE, SR_PKJWT_KID (optional part 1),
//   SR_MTLS_CLIENT_ID, SR_MTLS_CERT_FILE, SR_MTLS_KEY_FILE (optional part 2).

import { readFileSync } from 'node:fs';
import * as client from 'openid-client';
import * as jose from 'jose';
import { browse, env, fetchVia, issuer } from './browser.mjs';

async function flow({ clientId, clientAuth, metadata, fetchOptions, dpop }) {
  const options = { [client.customFetch]: fetchVia(fetchOptions) };
  const config = await client.discovery(issuer, clientId, { id_token_signed_response_alg: 'ES256', ...metadata }, clientAuth, options);
  config[client.customFetch] = options[client.customFetch];
  const DPoP = dpop ? client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256')) : undefined;
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = await client.buildAuthorizationUrlWithPAR(config, {
    redirect_uri: env('SR_REDIRECT_URI'),
    scope: 'openid profile accounts',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  }, { DPoP });
  const callback = await browse(url.href);
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  }, undefined, { DPoP });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub, { DPoP });
  return {
    authorization_response_iss: callback.searchParams.get('iss'),
    token_type: tokens.token_type,
    access_token: tokens.access_token,
    id_token_claims: claims,
    userinfo,
  };
}

const result = {};
try {
  if (process.env.SR_PKJWT_CLIENT_ID) {
    const alg = 'ES256';
    const key = await jose.importPKCS8(readFileSync(env('SR_PKJWT_KEY_FILE'), 'utf8'), alg);
    result.dpop = await flow({
      clientId: env('SR_PKJWT_CLIENT_ID'),
      clientAuth: client.PrivateKeyJwt({ key, kid: env('SR_PKJWT_KID') }),
      metadata: { token_endpoint_auth_signing_alg: alg },
      fetchOptions: {},
      dpop: true,
    });
  }
  if (process.env.SR_MTLS_CLIENT_ID) {
    result.mtls = await flow({
      clientId: env('SR_MTLS_CLIENT_ID'),
      clientAuth: client.TlsClientAuth(),
      metadata: { use_mtls_endpoint_aliases: true },
      fetchOptions: { cert: readFileSync(env('SR_MTLS_CERT_FILE')), key: readFileSync(env('SR_MTLS_KEY_FILE')) },
      dpop: false,
    });
  }
} catch (e) {
  process.stderr.write(`interop flow failed: ${e?.name}: ${e?.message} ${e?.error ?? ''} ${e?.error_description ?? ''} ${e?.cause?.message ?? ''}\n`);
  process.exit(1);
}
process.stdout.write(`${JSON.stringify(result)}\n`);
