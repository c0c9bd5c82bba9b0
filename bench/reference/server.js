// Reference OpenID provider for the compte-usager benchmark suite.
//
// node `oidc-provider` (a certified implementation) with its in-memory adapter, in one
// process, with its development login and consent pages (devInteractions). The suite
// (bench/run.py) starts it and runs the same scenarios against it as against our
// provider, so that each of our figures has a ratio against it measured in the same run.
//
// Configuration, all from the environment:
//   PORT             listening port (default 3100), on 127.0.0.1 only
//   BENCH_REDIRECT   redirect URI of the web client (default http://127.0.0.1:9/callback)
//   BENCH_SECRET     secret of both clients (default bench-secret-0123456789)
//
// This is NOT a deployment: devInteractions accept any login and password.

import * as crypto from 'node:crypto';

import Provider from 'oidc-provider';

const port = Number.parseInt(process.env.PORT || '3100', 10);
const issuer = `http://127.0.0.1:${port}`;
const redirectUri = process.env.BENCH_REDIRECT || 'http://127.0.0.1:9/callback';
const secret = process.env.BENCH_SECRET || 'bench-secret-0123456789';

// Same key kinds as our provider publishes: RS256 (ID tokens) and ES256 (access tokens).
function jwk(type, options, alg) {
  const { privateKey } = crypto.generateKeyPairSync(type, options);
  const key = privateKey.export({ format: 'jwk' });
  return { ...key, alg, use: 'sig', kid: crypto.randomUUID() };
}

const jwks = {
  keys: [
    jwk('rsa', { modulusLength: 2048 }, 'RS256'),
    jwk('ec', { namedCurve: 'P-256' }, 'ES256'),
  ],
};

// A fixed account: every login name maps to the same claims.
async function findAccount(ctx, sub) {
  return {
    accountId: sub,
    async claims() {
      return {
        sub,
        email: 'bench@example.org',
        email_verified: true,
        given_name: 'Bench',
        family_name: 'User',
        name: 'Bench User',
      };
    },
  };
}

const configuration = {
  clients: [
    {
      client_id: 'bench-web',
      client_secret: secret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      client_id: 'bench-service',
      client_secret: secret,
      redirect_uris: [],
      grant_types: ['client_credentials'],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'api',
    },
  ],
  jwks,
  findAccount,
  scopes: ['openid', 'offline_access', 'profile', 'email', 'api'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name'],
  },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
  },
  // A refresh token with every code exchange, without offline_access, and a new one on
  // every use (the old one is then revoked): the same policy as our provider.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: () => true,
  ttl: {
    AccessToken: 300,
    AuthorizationCode: 60,
    ClientCredentials: 300,
    IdToken: 300,
    RefreshToken: 30 * 24 * 3600,
    Interaction: 600,
    Session: 12 * 3600,
    Grant: 30 * 24 * 3600,
  },
};

const provider = new Provider(issuer, configuration);
// Tolerate a benign error log line per failing request without flooding the output.
provider.on('server_error', (ctx, err) => { console.error('server_error', err); });

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer} (pid ${process.pid})`);
});

function stop() {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
