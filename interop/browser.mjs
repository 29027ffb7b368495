// What the interop flows share: the environment, a fetch that trusts the test CA, and
// the user's "browser" that signs in and approves by posting the forms itself.

import { readFileSync } from 'node:fs';
import { Agent, fetch as undiciFetch } from 'undici';

export const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
export const issuer = new URL(env('SR_ISSUER'));
const ca = readFileSync(env('SR_CA_FILE'));
const lookup = (hostname, options, callback) => {
  if (options && options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
  else callback(null, '127.0.0.1', 4);
};
const agent = (extra) => new Agent({ connect: { ca, lookup, ...extra } });
export const fetchVia = (extra) => {
  const dispatcher = agent(extra);
  return (url, options) => undiciFetch(url, { ...options, dispatcher });
};

/** The user's browser: cookies, no automatic redirects, the forms posted by hand. */
export async function browse(authorizationUrl) {
  const dispatcher = agent({});
  const jar = new Map();
  const go = async (url, form) => {
    const headers = { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') };
    let body;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    const r = await undiciFetch(url, { method: form ? 'POST' : 'GET', headers, body, redirect: 'manual', dispatcher });
    for (const c of r.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      jar.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
    }
    return { status: r.status, location: r.headers.get('location'), text: await r.text() };
  };
  const field = (html, name) => {
    const m = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
    if (!m) throw new Error(`no ${name} field`);
    return m[1].replaceAll('&#x2f;', '/').replaceAll('&amp;', '&').replaceAll('&quot;', '"').replaceAll('&#x27;', "'");
  };
  const login = await go(authorizationUrl);
  if (login.status !== 200) throw new Error(`authorization endpoint answered ${login.status}`);
  const signedIn = await go(new URL('/login', issuer), {
    username: env('SR_USER'), password: env('SR_PASSWORD'), csrf: field(login.text, 'csrf'), request_uri: field(login.text, 'request_uri'),
  });
  if (signedIn.status !== 303) throw new Error(`login answered ${signedIn.status}`);
  const consent = await go(new URL(signedIn.location, issuer));
  const done = await go(new URL('/consent', issuer), {
    csrf: field(consent.text, 'csrf'), request_uri: field(consent.text, 'request_uri'), decision: 'approve',
  });
  if (done.status !== 303) throw new Error(`consent answered ${done.status}`);
  return new URL(done.location);
}

