// Proves that provider.mjs works WITHOUT the proxy, and documents - by printing every
// request - which requests, HTML forms and fields an RP (the Rust e2e test) has to
// send. It plays the RP with plain fetch(), manual redirects and a hand-made cookie jar.
//
//   node tests/e2e/login.mjs                      # starts its own provider.mjs on a free port
//   node tests/e2e/login.mjs http://127.0.0.1:PORT  # or OP_ISSUER=...: use a running one
//
// Env: OP_ISSUER (as above), OP_REDIRECT_URI (default
// http://app.localtest:8080/oauth2/callback - must be among the provider's
// OP_REDIRECT_URIS), OP_CLIENT_SECRET (default e2e-secret), QUIET=1 (less output).
// Exit status 0 = every check passed; the last line is "login.mjs: N passed, 0 failed".

import { spawn } from 'node:child_process';
import {
  createHash, createPublicKey, randomBytes, verify as cryptoVerify,
} from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { strict as assert } from 'node:assert';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REDIRECT_URI = process.env.OP_REDIRECT_URI || 'http://app.localtest:8080/oauth2/callback';
const POST_LOGOUT_URI = `${new URL(REDIRECT_URI).origin}/`;
const SECRET = process.env.OP_CLIENT_SECRET || 'e2e-secret';
const SCOPE = 'openid profile email offline_access';
const QUIET = process.env.QUIET === '1';

let passed = 0;
function check(cond, what) {
  assert.ok(cond, what);
  passed += 1;
  if (!QUIET) console.log(`    ok: ${what}`);
}
function step(msg) { console.log(msg); }
function detail(msg) { if (!QUIET) console.log(msg); }

// ---------------------------------------------------------------- cookie jar
// Minimal RFC 6265 jar for a single host: name, value, path, expiry. Enough for
// oidc-provider's _session (path /), _interaction (path /interaction/<uid>) and
// _interaction_resume (path /auth/<uid>) cookies and their .sig signatures.
class CookieJar {
  #cookies = new Map(); // key "name\0path" -> { name, value, path, expires }

  store(url, response) {
    for (const header of response.headers.getSetCookie()) {
      const [pair, ...attrs] = header.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let cpath = '/';
      let expires = Infinity;
      for (const attr of attrs) {
        const [k, v = ''] = attr.split('=');
        const key = k.trim().toLowerCase();
        if (key === 'path') cpath = v.trim() || '/';
        if (key === 'expires') expires = Date.parse(v.trim());
        if (key === 'max-age') expires = Date.now() + Number(v.trim()) * 1000;
      }
      const id = `${name}\0${cpath}`;
      if (expires <= Date.now()) {
        this.#cookies.delete(id);
      } else {
        this.#cookies.set(id, { name, value, path: cpath, expires });
      }
      detail(`      set-cookie: ${name}=${value.length > 12 ? `${value.slice(0, 12)}…` : value}; path=${cpath}${expires <= Date.now() ? ' (deleted)' : ''}`);
    }
    void url;
  }

  header(url) {
    const { pathname } = new URL(url);
    const now = Date.now();
    const matching = [...this.#cookies.values()]
      .filter((c) => c.expires > now)
      .filter((c) => pathname === c.path || pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .sort((a, b) => b.path.length - a.path.length);
    return matching.map((c) => `${c.name}=${c.value}`).join('; ');
  }

  names(url) {
    return this.header(url).split('; ').filter(Boolean).map((p) => p.split('=')[0]);
  }
}

// ---------------------------------------------------------------- http helpers
async function request(jar, method, url, { form, headers = {} } = {}) {
  const h = { ...headers };
  if (jar) {
    const cookie = jar.header(url);
    if (cookie) h.cookie = cookie;
  }
  let body;
  if (form) {
    h['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(form).toString();
  }
  const u = new URL(url);
  detail(`  -> ${method} ${u.pathname}${u.search.length > 90 ? `${u.search.slice(0, 90)}…` : u.search}`
    + (form ? `  form{${Object.keys(form).map((k) => (['client_secret', 'code_verifier', 'code', 'refresh_token', 'token', 'xsrf'].includes(k) ? `${k}=…` : `${k}=${form[k]}`)).join(', ')}}` : '')
    + (jar && h.cookie ? `  cookies[${jar.names(url).join(', ')}]` : ''));
  const res = await fetch(url, {
    method, headers: h, body, redirect: 'manual',
  });
  if (jar) jar.store(url, res);
  const text = await res.text();
  const location = res.headers.get('location');
  detail(`  <- ${res.status}${location ? ` Location: ${location.length > 110 ? `${location.slice(0, 110)}…` : location}` : ''}`);
  return { status: res.status, headers: res.headers, text, location: location && new URL(location, url).href };
}

function decodeEntities(s) {
  return s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|#39|apos);/gi, (m, e) => {
    const l = e.toLowerCase();
    if (l === 'amp') return '&';
    if (l === 'lt') return '<';
    if (l === 'gt') return '>';
    if (l === 'quot') return '"';
    if (l === 'apos') return "'";
    if (l.startsWith('#x')) return String.fromCodePoint(Number.parseInt(l.slice(2), 16));
    return String.fromCodePoint(Number.parseInt(l.slice(1), 10));
  });
}

// The single <form> of a devInteractions page: action, method, named <input>s.
function parseForm(html) {
  const f = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  assert.ok(f, `no <form> in page:\n${html.slice(0, 2000)}`);
  const attr = (s, name) => {
    const m = new RegExp(`\\b${name}="([^"]*)"`, 'i').exec(s);
    return m ? decodeEntities(m[1]) : undefined;
  };
  const inputs = [];
  for (const m of f[2].matchAll(/<input\b([^>]*)>/gi)) {
    inputs.push({ name: attr(m[1], 'name'), type: attr(m[1], 'type'), value: attr(m[1], 'value') });
  }
  return {
    action: attr(f[1], 'action'), method: (attr(f[1], 'method') || 'get').toUpperCase(), id: attr(f[1], 'id'), inputs,
  };
}

function b64url(buf) { return Buffer.from(buf).toString('base64url'); }

function decodeJwt(jwt) {
  const [h, p, s] = jwt.split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url')),
    payload: JSON.parse(Buffer.from(p, 'base64url')),
    signingInput: `${h}.${p}`,
    signature: Buffer.from(s, 'base64url'),
  };
}

async function verifyIdToken(op, idToken, clientId, nonce) {
  const { header, payload, signingInput, signature } = decodeJwt(idToken);
  const jwks = await (await fetch(op.jwks_uri)).json();
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  check(header.alg === 'RS256' && jwk, `id_token alg RS256, kid ${header.kid} found in jwks_uri`);
  const ok = cryptoVerify('RSA-SHA256', Buffer.from(signingInput), createPublicKey({ key: jwk, format: 'jwk' }), signature);
  check(ok, 'id_token signature verifies against the provider JWKS');
  check(payload.iss === op.issuer, `id_token iss = ${payload.iss}`);
  check(payload.aud === clientId || (Array.isArray(payload.aud) && payload.aud.includes(clientId)), `id_token aud = ${clientId}`);
  if (nonce !== undefined) check(payload.nonce === nonce, 'id_token nonce matches');
  check(payload.exp > Date.now() / 1000, `id_token not expired (exp in ${payload.exp - Math.floor(Date.now() / 1000)} s)`);
  return payload;
}

// ---------------------------------------------------------------- the flow
// authorize -> login form -> resume -> consent form -> resume -> redirect_uri?code
// expect: the prompts the provider must show, in order: ['login', 'consent'] for a
// fresh browser, ['consent'] with a session but no grant for this client (or with
// prompt=consent), [] with a session and an existing grant (silent SSO).
async function authorize(op, jar, clientId, login, { expect = ['login', 'consent'], prompt } = {}) {
  const state = b64url(randomBytes(16));
  const nonce = b64url(randomBytes(16));
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier).digest());

  const authUrl = new URL(op.authorization_endpoint);
  authUrl.search = new URLSearchParams({
    client_id: clientId,
    response_type: 'code',
    scope: SCOPE,
    redirect_uri: REDIRECT_URI,
    state,
    nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...(prompt ? { prompt } : {}),
  }).toString();

  let n = 1;
  step(`  [${n}] GET authorization_endpoint (client ${clientId}, PKCE S256${prompt ? `, prompt=${prompt}` : ''})`);
  let res = await request(jar, 'GET', authUrl.href);
  if (expect.length) {
    check(res.status === 303 && /\/interaction\/[^/]+$/.test(new URL(res.location).pathname), 'authorize -> 303 to /interaction/<uid>');
  } else {
    check(res.status === 303 && res.location.startsWith(`${REDIRECT_URI}?`), 'authorize -> 303 straight to redirect_uri (no interaction)');
  }

  const seen = [];
  for (let hop = 0; hop < 6; hop += 1) {
    const loc = new URL(res.location);
    if (`${loc.origin}${loc.pathname}` === REDIRECT_URI) break;

    if (/^\/interaction\/[^/]+$/.test(loc.pathname)) {
      const uid = loc.pathname.split('/')[2];
      n += 1;
      step(`  [${n}] GET /interaction/${uid} (render the prompt page)`);
      const page = await request(jar, 'GET', loc.href);
      check(page.status === 200, 'interaction page 200');
      const form = parseForm(page.text);
      const prompt = form.inputs.find((i) => i.name === 'prompt')?.value;
      detail(`      form: ${form.method} ${form.action}  inputs: ${form.inputs.map((i) => `${i.name}(${i.type}${i.value ? `=${i.value}` : ''})`).join(' ')}`);
      check(form.method === 'POST' && new URL(form.action, loc).href === `${op.issuer}/interaction/${uid}`, `form is POST ${op.issuer}/interaction/${uid}`);
      seen.push(prompt);
      let fields;
      if (prompt === 'login') {
        check(form.inputs.some((i) => i.name === 'login') && form.inputs.some((i) => i.name === 'password'), 'login form has fields prompt, login, password');
        fields = { prompt: 'login', login, password: 'any-password' };
      } else if (prompt === 'consent') {
        check(form.inputs.length === 1, 'consent form has the single field prompt=consent');
        fields = { prompt: 'consent' };
      } else {
        throw new Error(`unexpected prompt ${prompt}`);
      }
      n += 1;
      step(`  [${n}] POST /interaction/${uid} (${prompt})`);
      res = await request(jar, 'POST', new URL(form.action, loc).href, { form: fields });
      check(res.status === 303 && new URL(res.location).pathname === `/auth/${uid}`, `submit ${prompt} -> 303 /auth/${uid}`);
      n += 1;
      step(`  [${n}] GET /auth/${uid} (resume the authorization request)`);
      res = await request(jar, 'GET', res.location);
      check(res.status === 303, 'resume -> 303');
      continue;
    }
    throw new Error(`unexpected redirect to ${res.location}\n${res.text.slice(0, 1000)}`);
  }

  check(JSON.stringify(seen) === JSON.stringify(expect), `prompts seen: [${seen.join(', ')}]`);
  const cb = new URL(res.location);
  check(`${cb.origin}${cb.pathname}` === REDIRECT_URI, `redirected to redirect_uri ${REDIRECT_URI}`);
  check(cb.searchParams.get('state') === state, 'callback state matches');
  check(cb.searchParams.get('iss') === op.issuer, `callback carries iss=${op.issuer} (RFC 9207)`);
  const code = cb.searchParams.get('code');
  check(code, 'callback carries a code');
  return { code, verifier, nonce };
}

function clientAuth(clientId, authMethod, form) {
  if (authMethod === 'client_secret_basic') {
    // RFC 6749 2.3.1: form-urlencode id and secret, then base64.
    const cred = `${encodeURIComponent(clientId)}:${encodeURIComponent(SECRET)}`;
    return { form, headers: { authorization: `Basic ${Buffer.from(cred).toString('base64')}` } };
  }
  return { form: { ...form, client_id: clientId, client_secret: SECRET }, headers: {} };
}

async function tokenRequest(op, clientId, authMethod, form) {
  const { form: f, headers } = clientAuth(clientId, authMethod, form);
  const res = await request(null, 'POST', op.token_endpoint, { form: f, headers });
  return { status: res.status, json: JSON.parse(res.text) };
}

async function fullFlow(op, clientId, authMethod, login, {
  jar = new CookieJar(), expect = ['login', 'consent'], prompt, replay = false, reuse = false,
} = {}) {
  console.log(`\n=== ${clientId} (${authMethod}), login "${login}"${prompt ? `, prompt=${prompt}` : ''}${expect.includes('login') ? '' : ' (existing session: SSO)'} ===`);
  const { code, verifier, nonce } = await authorize(op, jar, clientId, login, { expect, prompt });

  step(`  [token] POST token_endpoint grant_type=authorization_code (${authMethod})`);
  const tok = await tokenRequest(op, clientId, authMethod, {
    grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier,
  });
  check(tok.status === 200, `token endpoint 200 ${tok.status !== 200 ? JSON.stringify(tok.json) : ''}`);
  const t = tok.json;
  detail(`      response keys: ${Object.keys(t).join(', ')}; token_type=${t.token_type} expires_in=${t.expires_in} scope="${t.scope}"`);
  check(t.token_type === 'Bearer' && t.access_token && t.id_token && t.refresh_token, 'got access_token, id_token, refresh_token');
  // oidc-provider drops offline_access from the request unless prompt contains
  // "consent" (OIDC Core 11); issueRefreshToken still hands out a refresh token.
  const offline = prompt?.split(' ').includes('consent') ?? false;
  check(t.scope.split(' ').includes('offline_access') === offline,
    `granted scope "${t.scope}" ${offline ? 'includes' : 'lacks'} offline_access`);
  const claims = await verifyIdToken(op, t.id_token, clientId, nonce);
  detail(`      id_token claims: ${JSON.stringify(claims)}`);
  const groups = login.startsWith('eng') ? ['engineering'] : ['staff'];
  check(claims.sub === login && claims.email === `${login}@example.com` && claims.email_verified === true
    && typeof claims.name === 'string' && JSON.stringify(claims.groups) === JSON.stringify(groups),
  `id_token has sub/email/email_verified/name/groups=${JSON.stringify(groups)}`);

  step('  [userinfo] GET userinfo_endpoint with the access token');
  const ui = await fetch(op.userinfo_endpoint, { headers: { authorization: `Bearer ${t.access_token}` } });
  const uiJson = await ui.json();
  detail(`      userinfo: ${JSON.stringify(uiJson)}`);
  check(ui.status === 200 && uiJson.sub === login && uiJson.email === `${login}@example.com`, 'userinfo returns the account claims');

  step(`  [refresh] POST token_endpoint grant_type=refresh_token (${authMethod})`);
  const ref = await tokenRequest(op, clientId, authMethod, { grant_type: 'refresh_token', refresh_token: t.refresh_token });
  check(ref.status === 200, `refresh 200 ${ref.status !== 200 ? JSON.stringify(ref.json) : ''}`);
  const r = ref.json;
  detail(`      response keys: ${Object.keys(r).join(', ')}; expires_in=${r.expires_in}`);
  check(r.access_token && r.access_token !== t.access_token, 'refresh returned a new access_token');
  check(r.id_token, 'refresh returned a new id_token');
  const rclaims = await verifyIdToken(op, r.id_token, clientId, undefined);
  check(rclaims.sub === login && JSON.stringify(rclaims.groups) === JSON.stringify(groups), 'refreshed id_token keeps sub and groups');
  if (r.refresh_token && r.refresh_token !== t.refresh_token) check(true, 'refresh token was rotated');

  if (reuse && !(r.refresh_token && r.refresh_token !== t.refresh_token)) {
    step('  [reuse] skipped: refresh tokens are not rotated (OP_ROTATE_REFRESH=0)');
  } else if (reuse) {
    step('  [reuse] the rotated-out refresh token once more: rejected, and the whole grant is revoked');
    const old = await tokenRequest(op, clientId, authMethod, { grant_type: 'refresh_token', refresh_token: t.refresh_token });
    check(old.status === 400 && old.json.error === 'invalid_grant', 'the rotated-out refresh token is rejected (invalid_grant)');
    const cur = await tokenRequest(op, clientId, authMethod, { grant_type: 'refresh_token', refresh_token: r.refresh_token });
    check(cur.status === 400 && cur.json.error === 'invalid_grant', 'reuse detection revoked the current refresh token too');
  }

  if (replay) {
    step('  [replay] the same code a second time must fail, and revokes the whole grant');
    const again = await tokenRequest(op, clientId, authMethod, {
      grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier,
    });
    check(again.status === 400 && again.json.error === 'invalid_grant', 'code replay -> 400 invalid_grant');
    const dead = await tokenRequest(op, clientId, authMethod, { grant_type: 'refresh_token', refresh_token: r.refresh_token || t.refresh_token });
    check(dead.status === 400 && dead.json.error === 'invalid_grant', 'after code replay the refresh token is revoked too');
  }
  return { tokens: r, jar };
}

// ---------------------------------------------------------------- main
async function startOwnProvider() {
  const child = spawn(process.execPath, [path.join(HERE, 'provider.mjs'), '0'], {
    env: {
      ...process.env,
      OP_REDIRECT_URIS: REDIRECT_URI,
      OP_POST_LOGOUT_URIS: POST_LOGOUT_URI,
    },
    stdio: ['ignore', 'pipe', QUIET ? 'ignore' : 'inherit'],
  });
  const t0 = Date.now();
  let buf = '';
  const issuer = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('provider.mjs did not print READY within 15 s')), 15000);
    child.stdout.on('data', (d) => {
      buf += d;
      const m = /^READY (\S+)$/m.exec(buf);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (c) => { clearTimeout(timer); reject(new Error(`provider.mjs exited early (${c})`)); });
  });
  console.log(`started provider.mjs (pid ${child.pid}): READY ${issuer} after ${Date.now() - t0} ms`);
  return { child, issuer };
}

async function main() {
  let own;
  let issuer = process.argv[2] || process.env.OP_ISSUER;
  if (!issuer) {
    own = await startOwnProvider();
    issuer = own.issuer;
  }
  try {
    step(`GET ${issuer}/.well-known/openid-configuration`);
    const op = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
    check(op.issuer === issuer, 'discovery issuer matches');
    for (const k of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri', 'end_session_endpoint', 'revocation_endpoint']) {
      detail(`      ${k}: ${op[k]}`);
    }
    check(op.code_challenge_methods_supported.join() === 'S256', 'PKCE S256 advertised');
    check(['client_secret_basic', 'client_secret_post'].every((m) => op.token_endpoint_auth_methods_supported.includes(m)), 'basic and post auth advertised');

    // 1. client_secret_basic, fresh browser, no prompt param: login + consent;
    //    offline_access is dropped, a (session-bound) refresh token is issued anyway.
    const basic = await fullFlow(op, 'portcullis-basic', 'client_secret_basic', 'eng-alice');
    // 2. client_secret_post, fresh browser, prompt=consent: login + consent; offline_access granted.
    const post = await fullFlow(op, 'portcullis-post', 'client_secret_post', 'bob', { prompt: 'consent' });
    // 3. SSO: the first browser again, the other client: the _session cookie skips the
    //    login prompt, consent for the new client remains.
    const sso = await fullFlow(op, 'portcullis-post', 'client_secret_post', 'eng-alice', { jar: basic.jar, expect: ['consent'], prompt: 'consent' });
    // 3b. the first browser, the first client again, no prompt: session + existing grant
    //     -> straight back to the redirect_uri with a code, no page at all.
    console.log('\n=== portcullis-basic again in the first browser (silent SSO) ===');
    await authorize(op, basic.jar, 'portcullis-basic', 'eng-alice', { expect: [] });

    // 4. refresh token reuse detection and 5. code replay protection, each on a
    //    grant of its own since both revoke the whole grant.
    await fullFlow(op, 'portcullis-basic', 'client_secret_basic', 'carol', { reuse: true });
    await fullFlow(op, 'portcullis-post', 'client_secret_post', 'eng-dave', { replay: true, prompt: 'consent' });

    console.log('\n=== negative checks ===');
    step('  wrong auth method: portcullis-basic authenticating with client_secret_post');
    const wrong = await tokenRequest(op, 'portcullis-basic', 'client_secret_post', { grant_type: 'refresh_token', refresh_token: basic.tokens.refresh_token });
    check(wrong.status === 401 && wrong.json.error === 'invalid_client', `wrong client auth method -> 401 invalid_client (${wrong.status} ${JSON.stringify(wrong.json)})`);
    step('  wrong auth method: portcullis-post authenticating with client_secret_basic');
    const wrong2 = await tokenRequest(op, 'portcullis-post', 'client_secret_basic', { grant_type: 'refresh_token', refresh_token: post.tokens.refresh_token });
    check(wrong2.status === 401 && wrong2.json.error === 'invalid_client', `wrong client auth method -> 401 invalid_client (${wrong2.status} ${JSON.stringify(wrong2.json)})`);
    step('  wrong secret');
    const badSecret = await request(null, 'POST', op.token_endpoint, {
      form: {
        grant_type: 'refresh_token', refresh_token: post.tokens.refresh_token, client_id: 'portcullis-post', client_secret: 'nope',
      },
    });
    check(badSecret.status === 401 && JSON.parse(badSecret.text).error === 'invalid_client', 'wrong client_secret -> 401 invalid_client');
    step('  authorization request without PKCE');
    const noPkce = new URL(op.authorization_endpoint);
    noPkce.search = new URLSearchParams({
      client_id: 'portcullis-basic', response_type: 'code', scope: SCOPE, redirect_uri: REDIRECT_URI, state: 's',
    }).toString();
    const np = await request(new CookieJar(), 'GET', noPkce.href);
    const npLoc = np.location && new URL(np.location);
    check(np.status === 303 && npLoc.searchParams.get('error') === 'invalid_request', `no code_challenge -> error redirect (${npLoc?.searchParams.get('error_description')})`);
    step('  unregistered redirect_uri');
    const badRedir = new URL(noPkce);
    badRedir.searchParams.set('redirect_uri', 'http://evil.localtest/cb');
    const br = await request(new CookieJar(), 'GET', badRedir.href);
    check(br.status === 400 && /redirect_uri did not match/.test(br.text), 'unregistered redirect_uri -> 400 page, no redirect');

    console.log('\n=== revocation ===');
    step('  POST revocation_endpoint token=<refresh_token> (client_secret_post)');
    const { form: rf, headers: rh } = clientAuth('portcullis-post', 'client_secret_post', { token: post.tokens.refresh_token, token_type_hint: 'refresh_token' });
    const rev = await request(null, 'POST', op.revocation_endpoint, { form: rf, headers: rh });
    check(rev.status === 200, 'revocation 200');
    const afterRev = await tokenRequest(op, 'portcullis-post', 'client_secret_post', { grant_type: 'refresh_token', refresh_token: post.tokens.refresh_token });
    check(afterRev.status === 400 && afterRev.json.error === 'invalid_grant', 'revoked refresh token -> invalid_grant');

    console.log('\n=== RP-initiated logout (first browser) ===');
    const endUrl = new URL(op.end_session_endpoint);
    endUrl.search = new URLSearchParams({
      id_token_hint: basic.tokens.id_token, post_logout_redirect_uri: POST_LOGOUT_URI, state: 'bye',
    }).toString();
    step('  GET end_session_endpoint?id_token_hint&post_logout_redirect_uri&state');
    const endPage = await request(basic.jar, 'GET', endUrl.href);
    check(endPage.status === 200, 'logout confirmation page 200');
    const lf = parseForm(endPage.text);
    detail(`      form: ${lf.method} ${lf.action} id=${lf.id} inputs: ${lf.inputs.map((i) => i.name).join(' ')} (+ button name=logout value=yes)`);
    const xsrf = lf.inputs.find((i) => i.name === 'xsrf')?.value;
    check(lf.method === 'POST' && new URL(lf.action, issuer).href === `${issuer}/session/end/confirm` && xsrf, 'logout form: POST /session/end/confirm with xsrf');
    step('  POST /session/end/confirm xsrf=… logout=yes');
    const conf = await request(basic.jar, 'POST', new URL(lf.action, issuer).href, { form: { xsrf, logout: 'yes' } });
    check(conf.status === 303 && conf.location === `${POST_LOGOUT_URI}?state=bye`, `logout -> 303 ${POST_LOGOUT_URI}?state=bye`);
    step('  refresh tokens after the OP session ended');
    const rtNoOffline = await tokenRequest(op, 'portcullis-basic', 'client_secret_basic', { grant_type: 'refresh_token', refresh_token: basic.tokens.refresh_token });
    check(rtNoOffline.status === 400 && rtNoOffline.json.error === 'invalid_grant', 'refresh token issued without offline_access died with the session (invalid_grant)');
    const rtOffline = await tokenRequest(op, 'portcullis-post', 'client_secret_post', { grant_type: 'refresh_token', refresh_token: sso.tokens.refresh_token });
    check(rtOffline.status === 200, `offline_access refresh token survives the logout (${rtOffline.status} ${JSON.stringify(rtOffline.json)})`);
    console.log('\n=== access token expiry ===');
    const ttl = rtOffline.json.expires_in;
    if (ttl <= 5) {
      step(`  access token lives ${ttl} s (OP_ACCESS_TTL); waiting ${ttl + 1} s`);
      await new Promise((r) => { setTimeout(r, (ttl + 1) * 1000); });
      const expired = await fetch(op.userinfo_endpoint, { headers: { authorization: `Bearer ${rtOffline.json.access_token}` } });
      check(expired.status === 401, `expired access token -> userinfo ${expired.status}`);
      const again = await tokenRequest(op, 'portcullis-post', 'client_secret_post', { grant_type: 'refresh_token', refresh_token: rtOffline.json.refresh_token });
      check(again.status === 200 && again.json.access_token, 'refresh after expiry -> new access token');
      const fresh = await fetch(op.userinfo_endpoint, { headers: { authorization: `Bearer ${again.json.access_token}` } });
      check(fresh.status === 200, 'new access token works at userinfo');
    } else {
      step(`  skipped: access tokens live ${ttl} s; run with OP_ACCESS_TTL=2 to wait for one to expire`);
    }

    console.log('\n=== after logout ===');
    step('  the first browser must now log in again');
    await authorize(op, basic.jar, 'portcullis-basic', 'eng-alice', { expect: ['login', 'consent'] });

    step('\nGET /__e2e/token-log (what the provider saw at /token and /token/revocation)');
    const log = await (await fetch(`${issuer}/__e2e/token-log`)).json();
    for (const e of log) detail(`      ${e.path} client=${e.client_id} auth=${e.auth_method} grant_type=${e.grant_type} -> ${e.status}`);
    check(log.some((e) => e.client_id === 'portcullis-basic' && e.auth_method === 'client_secret_basic' && e.grant_type === 'refresh_token' && e.status === 200), 'token log: basic client refreshed with client_secret_basic');
    check(log.some((e) => e.client_id === 'portcullis-post' && e.auth_method === 'client_secret_post' && e.grant_type === 'refresh_token' && e.status === 200), 'token log: post client refreshed with client_secret_post');

    console.log(`\nlogin.mjs: ${passed} passed, 0 failed`);
  } finally {
    if (own) {
      own.child.kill('SIGTERM');
      const [code, signal] = await once(own.child, 'exit');
      console.log(`provider.mjs stopped (exit ${code ?? signal})`);
    }
  }
}

main().catch((err) => {
  console.error(err);
  console.log(`\nlogin.mjs: ${passed} passed, 1 failed`);
  process.exitCode = 1;
});
