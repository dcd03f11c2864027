// Real OpenID Provider for Portcullis end-to-end tests.
//
// Wraps the npm package `oidc-provider` (v9, pinned in package.json) with a fixed,
// test-only configuration. Nobody on the Portcullis team wrote the provider itself:
// this file only configures it.
//
//   node tests/e2e/provider.mjs [PORT]
//
// PORT comes from argv[2], else env OP_PORT, else 0 (= pick a free port). It listens
// on 127.0.0.1 only; the issuer is `http://127.0.0.1:<PORT>` (the real port when 0
// was asked for). When it is listening it prints exactly one line on stdout:
//
//   READY http://127.0.0.1:<PORT>
//
// Everything else (oidc-provider notices and warnings, request errors) goes to
// stderr. SIGTERM / SIGINT close the server and exit 0.
//
// Besides the standard endpoints (see /.well-known/openid-configuration) it serves
// GET /__e2e/token-log: JSON list of every call to /token and /token/revocation with
// the client_id, the client authentication method actually used and the status.
//
// Environment (all optional):
//   OP_PORT               port, when argv[2] is absent (default 0 = ephemeral)
//   OP_REDIRECT_URIS      comma-separated redirect_uris for BOTH clients
//                         (default http://app.localtest:8080/oauth2/callback,
//                          http://127.0.0.1:8080/oauth2/callback)
//   OP_POST_LOGOUT_URIS   comma-separated post_logout_redirect_uris for both clients
//                         (default: the origin + "/" of every redirect URI)
//   OP_ACCESS_TTL         access token lifetime in seconds (default 60)
//   OP_ID_TOKEN_TTL       ID token lifetime in seconds (default OP_ACCESS_TTL)
//   OP_REFRESH_TTL        refresh token lifetime in seconds (default 86400)
//   OP_CLOCK_TOLERANCE    seconds of leeway on token expiry (default 0; oidc-provider's own
//                         default is 15)
//   OP_ROTATE_REFRESH     "1" (default): every refresh returns a new refresh token; the
//                         old one stops working, and presenting it again revokes the
//                         whole grant (reuse detection); "0": keep the same refresh token
//   OP_CLIENT_SECRET      secret of both clients (default e2e-secret)
//   OP_DEBUG              "1": log every request (method, path, status) on stderr
//   OP_STRICT_CLIENT_AUTH "1" (default): each client must authenticate with exactly its
//                         registered method (see gate() below); "0": stock behaviour,
//                         where basic and post are interchangeable
//   OP_EXIT_ON_STDIN_EOF  "1": also shut down when stdin reaches EOF (the parent died
//                         or closed the pipe) - a safety net for test harnesses

import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const started = process.hrtime.bigint();

// oidc-provider prints NOTICEs with console.info (stdout). Keep stdout for the single
// READY line that the test harness waits for.
console.info = (...args) => console.error(...args);
console.log = (...args) => console.error(...args);

function intEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number.parseInt(raw, 10);
  if (!Number.isFinite(n) || n < 0 || String(n) !== raw.trim()) {
    console.error(`provider.mjs: ${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

function listEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  return raw.split(',').map((s) => s.trim()).filter(Boolean);
}

const portArg = process.argv[2] ?? process.env.OP_PORT ?? '0';
const PORT = Number.parseInt(portArg, 10);
if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535 || String(PORT) !== String(portArg).trim()) {
  console.error(`provider.mjs: bad port ${JSON.stringify(portArg)}`);
  process.exit(2);
}

const HOST = '127.0.0.1';
const ACCESS_TTL = intEnv('OP_ACCESS_TTL', 60);
const ID_TOKEN_TTL = intEnv('OP_ID_TOKEN_TTL', ACCESS_TTL);
const REFRESH_TTL = intEnv('OP_REFRESH_TTL', 24 * 60 * 60);
const CLOCK_TOLERANCE = intEnv('OP_CLOCK_TOLERANCE', 0);
const ROTATE_REFRESH = (process.env.OP_ROTATE_REFRESH ?? '1') !== '0';
const CLIENT_SECRET = process.env.OP_CLIENT_SECRET || 'e2e-secret';
const DEBUG = process.env.OP_DEBUG === '1';

const REDIRECT_URIS = listEnv('OP_REDIRECT_URIS', [
  'http://app.localtest:8080/oauth2/callback',
  'http://127.0.0.1:8080/oauth2/callback',
]);
const POST_LOGOUT_URIS = listEnv(
  'OP_POST_LOGOUT_URIS',
  [...new Set(REDIRECT_URIS.map((u) => `${new URL(u).origin}/`))],
);

for (const u of [...REDIRECT_URIS, ...POST_LOGOUT_URIS]) {
  let parsed;
  try { parsed = new URL(u); } catch { parsed = undefined; }
  if (!parsed || !['http:', 'https:'].includes(parsed.protocol) || parsed.hash) {
    console.error(`provider.mjs: not an absolute http(s) URI without fragment: ${JSON.stringify(u)}`);
    process.exit(2);
  }
}

// Fixed cookie signing keys: cookies stay valid across restarts of the provider
// (sessions themselves are in memory and do not survive a restart).
const COOKIE_KEYS = [
  'portcullis-e2e-cookie-key-1-not-a-secret',
  'portcullis-e2e-cookie-key-2-not-a-secret',
];

// A fresh RS256 signing key per run (ID tokens are RS256 by default). The proxy must
// fetch it from jwks_uri, as it would from any real provider.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: 'e2e-rs256', use: 'sig', alg: 'RS256' };

function client(clientId, authMethod) {
  return {
    client_id: clientId,
    client_secret: CLIENT_SECRET,
    client_name: `Portcullis e2e (${authMethod})`,
    application_type: 'web',
    token_endpoint_auth_method: authMethod,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: REDIRECT_URIS,
    post_logout_redirect_uris: POST_LOGOUT_URIS,
    scope: 'openid profile email offline_access',
    id_token_signed_response_alg: 'RS256',
  };
}

function accountClaims(login) {
  return {
    sub: login,
    email: `${login}@example.com`,
    email_verified: true,
    name: `E2E User ${login}`,
    preferred_username: login,
    groups: login.startsWith('eng') ? ['engineering'] : ['staff'],
  };
}

const configuration = {
  clients: [
    client('portcullis-basic', 'client_secret_basic'),
    client('portcullis-post', 'client_secret_post'),
  ],

  jwks: { keys: [signingJwk] },

  // Authorization code flow only (drops implicit/hybrid from discovery too).
  responseTypes: ['code'],

  // Any login name is an account; the password is ignored by devInteractions.
  async findAccount(_ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return accountClaims(sub);
      },
    };
  },

  scopes: ['openid', 'profile', 'email', 'offline_access'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username', 'groups'],
  },
  // Put the scope-granted claims (email, name, groups, ...) into the ID token too, not
  // only into the userinfo response.
  conformIdTokenClaims: false,

  pkce: {
    // PKCE (S256, the only method v9 supports) for every client, also confidential ones.
    required: () => true,
  },

  features: {
    devInteractions: { enabled: true },
    revocation: {
      enabled: true,
      // Same as the default policy: a client may only revoke its own tokens.
      allowedPolicy(_ctx, c, token) {
        return token.clientId === c.clientId;
      },
    },
    introspection: { enabled: false },
    userinfo: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      // Same forms as the defaults (form id, field names), minus the web-font import.
      async logoutSource(ctx, form) {
        ctx.type = 'html';
        ctx.body = '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Logout Request</title></head><body>'
          + `<h1>Do you want to sign-out from ${ctx.host}?</h1>${form}`
          + '<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>'
          + '<button type="submit" form="op.logoutForm">No, stay signed in</button>'
          + '</body></html>';
      },
      async postLogoutSuccessSource(ctx) {
        ctx.type = 'html';
        ctx.body = '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Sign-out Success</title></head>'
          + '<body><h1>Sign-out Success</h1></body></html>';
      },
    },
  },

  // A refresh token on every code exchange of these clients, even when the RP did
  // not ask for offline_access (or it was dropped because prompt= lacked "consent").
  async issueRefreshToken(_ctx, c) {
    return c.grantTypeAllowed('refresh_token');
  },
  rotateRefreshToken: () => ROTATE_REFRESH,

  // oidc-provider's default is 15 s, which keeps an expired access token usable (and
  // stored) 15 s past its exp. One machine, one clock: expire exactly on time.
  clockTolerance: CLOCK_TOLERANCE,

  ttl: {
    AccessToken: ACCESS_TTL,
    IdToken: ID_TOKEN_TTL,
    AuthorizationCode: 60,
    RefreshToken: REFRESH_TTL,
    Interaction: 60 * 60,
    Session: 24 * 60 * 60,
    Grant: 24 * 60 * 60,
  },

  // Cookies: default names (_session, _interaction, _interaction_resume); over plain
  // http oidc-provider leaves `secure` off by itself (it sets it only when ctx.secure),
  // so nothing must be forced here. Setting secure: true would make koa throw
  // "Cannot send secure cookie over unencrypted connection".
  cookies: {
    keys: COOKIE_KEYS,
    long: { httpOnly: true, sameSite: 'lax' },
    short: { httpOnly: true, sameSite: 'lax' },
  },

  clientBasedCORS: () => false,

  renderError(ctx, out, _error) {
    // Plain, easily asserted error page: the OAuth error code and description.
    ctx.type = 'html';
    ctx.body = `<!DOCTYPE html><html><head><title>oidc error</title></head><body>`
      + `<h1>oops! something went wrong</h1>`
      + Object.entries(out).map(([k, v]) => `<pre id="${k}"><strong>${k}</strong>: ${String(v).replace(/[<>&"]/g, (ch) => `&#${ch.charCodeAt(0)};`)}</pre>`).join('')
      + `</body></html>`;
  },
};

// ---------------------------------------------------------------------------------
// Strict client authentication + a log of token-endpoint calls.
//
// Stock oidc-provider v9 treats client_secret_basic and client_secret_post as
// interchangeable for a client registered with either one (lib/shared/client_auth.js
// accepts both). Then the e2e test could not tell whether the proxy used the method
// it was configured with. So, unless OP_STRICT_CLIENT_AUTH=0, requests to the token
// and revocation endpoints are checked here first: portcullis-basic must send
// `Authorization: Basic` and no client_secret in the body, portcullis-post must send
// client_id + client_secret in the body and no Authorization header. A mismatch is
// answered 401 {"error":"invalid_client"} before oidc-provider sees the request.
//
// Every token/revocation call is recorded; GET /__e2e/token-log returns them as JSON
// ([{time, path, client_id, auth_method, grant_type, status}], oldest first) so a
// test can assert e.g. "the proxy refreshed with client_secret_post".
const STRICT_CLIENT_AUTH = (process.env.OP_STRICT_CLIENT_AUTH ?? '1') !== '0';
const REGISTERED_AUTH = new Map(configuration.clients.map((c) => [c.client_id, c.token_endpoint_auth_method]));
const CLIENT_AUTH_PATHS = new Set(['/token', '/token/revocation']);
const BODY_LIMIT = 56 * 1024;
const tokenLog = [];

function json(res, status, obj, extraHeaders = {}) {
  const body = JSON.stringify(obj);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
    ...extraHeaders,
  });
  res.end(body);
}

function readRawBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > BODY_LIMIT) {
        reject(new Error('request entity too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function basicClientId(authorization) {
  const m = /^basic\s+(\S+)$/i.exec(authorization ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i === -1) return undefined;
  try {
    return decodeURIComponent(decoded.slice(0, i).replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

async function gate(req, res, next) {
  const { pathname } = new URL(req.url, 'http://x');

  if (req.method === 'GET' && pathname === '/__e2e/token-log') {
    json(res, 200, tokenLog);
    return;
  }

  if (req.method !== 'POST' || !CLIENT_AUTH_PATHS.has(pathname)) {
    next(req, res);
    return;
  }

  let raw;
  try {
    raw = await readRawBody(req);
  } catch (err) {
    json(res, 400, { error: 'invalid_request', error_description: err.message });
    return;
  }
  const form = new URLSearchParams(raw);
  const headerClient = req.headers.authorization !== undefined ? basicClientId(req.headers.authorization) : undefined;
  const bodySecret = form.has('client_secret');
  let authMethod = 'none';
  if (req.headers.authorization !== undefined && bodySecret) authMethod = 'both';
  else if (req.headers.authorization !== undefined) authMethod = 'client_secret_basic';
  else if (bodySecret) authMethod = 'client_secret_post';
  const clientId = headerClient ?? form.get('client_id') ?? undefined;

  const entry = {
    time: new Date().toISOString(),
    path: pathname,
    client_id: clientId ?? null,
    auth_method: authMethod,
    grant_type: form.get('grant_type'),
    status: null,
  };
  tokenLog.push(entry);
  res.on('finish', () => {
    entry.status = res.statusCode;
    if (DEBUG) console.error(`provider.mjs: ${pathname} client=${entry.client_id} auth=${authMethod} grant_type=${entry.grant_type} -> ${res.statusCode}`);
  });

  const registered = clientId !== undefined ? REGISTERED_AUTH.get(clientId) : undefined;
  if (STRICT_CLIENT_AUTH && registered !== undefined && authMethod !== registered) {
    const description = `portcullis e2e provider: client ${clientId} is registered with ${registered} and must use only it, got ${authMethod}`;
    console.error(`provider.mjs: rejected ${pathname}: ${description}`);
    json(res, 401, { error: 'invalid_client', error_description: description },
      registered === 'client_secret_basic' ? { 'www-authenticate': 'Basic realm="portcullis-e2e"' } : {});
    return;
  }

  // oidc-provider reads an already consumed body from req.body (it logs a one-time
  // warning about an "upstream middleware parser" - that is this gate).
  req.body = raw;
  next(req, res);
}

// The HTTP server is bound first so that PORT=0 works: the issuer must contain the
// real port, and it is only known after listen().
let handler = (_req, res) => { res.statusCode = 503; res.end('starting'); };
const server = http.createServer((req, res) => {
  gate(req, res, handler).catch((err) => {
    console.error('provider.mjs gate error:', err);
    if (!res.headersSent) json(res, 500, { error: 'server_error' });
  });
});
server.keepAliveTimeout = 5000;

server.on('error', (err) => {
  console.error(`provider.mjs: ${err.message}`);
  process.exit(1);
});

server.listen(PORT, HOST, () => {
  const { port } = server.address();
  const issuer = `http://${HOST}:${port}`;
  const provider = new Provider(issuer, configuration);
  // Not behind a TLS-terminating proxy: do not trust X-Forwarded-*.
  provider.proxy = false;

  if (DEBUG) {
    provider.use(async (ctx, next) => {
      await next();
      console.error(`provider.mjs: ${ctx.method} ${ctx.path} -> ${ctx.status}`);
    });
  }
  provider.on('server_error', (_ctx, err) => console.error('provider.mjs server_error:', err));

  handler = provider.callback();
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  console.error(`provider.mjs: listening on ${issuer} (ready in ${ms.toFixed(0)} ms); `
    + `redirect_uris=${REDIRECT_URIS.join(',')} post_logout_redirect_uris=${POST_LOGOUT_URIS.join(',')} `
    + `access_ttl=${ACCESS_TTL}s id_token_ttl=${ID_TOKEN_TTL}s rotate_refresh=${ROTATE_REFRESH}`);
  process.stdout.write(`READY ${issuer}\n`);
});

let stopping = false;
function stop(signal) {
  if (stopping) return;
  stopping = true;
  console.error(`provider.mjs: ${signal}, shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  // Never hang the test suite.
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
// If the parent (the test harness) closes our stdin pipe, do not linger either.
if (process.env.OP_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', () => stop('stdin EOF'));
  process.stdin.resume();
}
