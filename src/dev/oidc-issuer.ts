/**
 * @module dev/oidc-issuer
 * A tiny OIDC issuer for the quickstart and the tests. NOT FOR PRODUCTION: keys live in memory and are lost on
 * exit, there is no user login, client secrets are plain configuration, and POST /dev/mint issues a token for any
 * subject and groups to whoever can reach the port without any authentication. Bind it to 127.0.0.1 (the default).
 *
 * Endpoints (relative to the issuer URL):
 *   GET  /.well-known/openid-configuration   discovery
 *   GET  /jwks                               public keys (every key ever used by this instance)
 *   POST /token                              RFC 6749 client_credentials (client_secret_basic or client_secret_post)
 *   POST /dev/mint                           JSON {sub, groups, ttlSeconds?} → {access_token, token_type, expires_in}
 *
 * Tokens are RS256 JWTs with iss, sub, aud, iat, exp, jti, the groups claim (a dotted name such as
 * "realm_access.roles" becomes a nested object) and, for client credentials, client_id.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey, JWK } from 'jose';

export interface DevIssuerClient {
  id: string;
  secret: string;
  groups: string[];
  /** Subject of tokens issued to this client; default the client id. */
  subject?: string;
}

export interface DevIssuerOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** The `iss` of tokens and the base of the endpoint URLs; default http://<host>:<port>. */
  issuerUrl?: string;
  clients: DevIssuerClient[];
  /** Default audience of issued tokens. */
  audience: string;
  /** Default 3600. */
  tokenTtlSeconds?: number;
  /** Default "groups"; a dotted path nests. */
  groupsClaim?: string;
  /** kid of the first signing key; default its RFC 7638 thumbprint. */
  kid?: string;
}

export interface MintOptions {
  sub: string;
  groups: string[];
  ttlSeconds?: number;
  audience?: string | string[];
  /** Merged last: may override any claim, registered ones included (handy for expired or not-yet-valid tokens). */
  extraClaims?: Record<string, unknown>;
}

export interface DevIssuer {
  readonly issuer: string;
  readonly port: number;
  readonly tokenEndpoint: string;
  mint(options: MintOptions): Promise<string>;
  /** A new RS256 key with a new kid becomes the signing key; the JWKS keeps serving the old ones. */
  rotateKey(): Promise<void>;
  close(): Promise<void>;
  /** GET /jwks requests served so far. */
  readonly jwksRequests: number;
}

interface SigningKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

const MAX_BODY_BYTES = 64 * 1024;

class HttpError extends Error {
  readonly status: number;
  readonly body: Record<string, string>;
  readonly headers: Record<string, string>;
  constructor(status: number, body: Record<string, string>, headers: Record<string, string> = {}) {
    super(body.error_description ?? body.error ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

async function newSigningKey(kid?: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true, modulusLength: 2048 });
  const jwk = await exportJWK(publicKey);
  const resolvedKid = kid ?? (await calculateJwkThumbprint(jwk, 'sha256'));
  return { kid: resolvedKid, privateKey, publicJwk: { ...jwk, kid: resolvedKid, alg: 'RS256', use: 'sig' } };
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const segments = path.split('.');
  let current = target;
  for (const segment of segments.slice(0, -1)) {
    const next = current[segment];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) current[segment] = {};
    current = current[segment] as Record<string, unknown>;
  }
  current[segments[segments.length - 1] as string] = value;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** Starts the dev issuer (see the module doc: not for production). */
export async function startDevIssuer(options: DevIssuerOptions): Promise<DevIssuer> {
  const host = options.host ?? '127.0.0.1';
  const ttlDefault = options.tokenTtlSeconds ?? 3600;
  const groupsClaim = options.groupsClaim ?? 'groups';
  const clients = new Map(options.clients.map((client) => [client.id, client]));
  const keys: SigningKey[] = [await newSigningKey(options.kid)];
  let jwksRequests = 0;
  let issuer = '';

  const signingKey = (): SigningKey => keys[keys.length - 1] as SigningKey;

  const mint = async (mintOptions: MintOptions & { clientId?: string; scope?: string }): Promise<string> => {
    const key = signingKey();
    const now = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = {
      iss: issuer,
      sub: mintOptions.sub,
      aud: mintOptions.audience ?? options.audience,
      iat: now,
      exp: now + (mintOptions.ttlSeconds ?? ttlDefault),
      jti: randomUUID(),
    };
    setPath(claims, groupsClaim, [...mintOptions.groups]);
    if (mintOptions.clientId !== undefined) claims.client_id = mintOptions.clientId;
    if (mintOptions.scope !== undefined) claims.scope = mintOptions.scope;
    Object.assign(claims, mintOptions.extraClaims ?? {});
    return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT' }).sign(key.privateKey);
  };

  const discovery = (): Record<string, unknown> => ({
    issuer,
    jwks_uri: `${issuer}/jwks`,
    token_endpoint: `${issuer}/token`,
    grant_types_supported: ['client_credentials'],
    response_types_supported: ['token'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
  });

  const authenticateClient = (request: IncomingMessage, form: URLSearchParams): DevIssuerClient => {
    const authorization = request.headers.authorization;
    const formId = form.get('client_id');
    const formSecret = form.get('client_secret');
    let id: string | null = null;
    let secret: string | null = null;
    const challenge = { 'www-authenticate': 'Basic realm="tollgate-dev-issuer"' };
    if (authorization !== undefined) {
      const match = /^basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization);
      if (!match) throw new HttpError(401, { error: 'invalid_client', error_description: 'unsupported client authentication' }, challenge);
      const decoded = Buffer.from(match[1] as string, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) throw new HttpError(401, { error: 'invalid_client', error_description: 'malformed Basic credentials' }, challenge);
      try {
        // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
        id = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
        secret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '));
      } catch {
        throw new HttpError(401, { error: 'invalid_client', error_description: 'malformed Basic credentials' }, challenge);
      }
      if (formSecret !== null) {
        throw new HttpError(400, {
          error: 'invalid_request',
          error_description: 'use one client authentication method, not Basic and form parameters together',
        });
      }
    } else {
      id = formId;
      secret = formSecret;
    }
    if (id === null || secret === null) {
      throw new HttpError(401, { error: 'invalid_client', error_description: 'client authentication required' }, challenge);
    }
    const client = clients.get(id);
    // Compare fixed-length digests so neither the length nor the content of the secret leaks through timing, and
    // do the comparison even for unknown clients.
    const expected = digest(client?.secret ?? `unknown-client:${randomUUID()}`);
    const matches = timingSafeEqual(expected, digest(secret));
    if (!client || !matches) {
      throw new HttpError(401, { error: 'invalid_client', error_description: 'unknown client or wrong secret' }, challenge);
    }
    return client;
  };

  const handleToken = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/x-www-form-urlencoded') {
      throw new HttpError(400, {
        error: 'invalid_request',
        error_description: 'expected content-type application/x-www-form-urlencoded',
      });
    }
    const form = new URLSearchParams(await readBody(request));
    const grantType = form.get('grant_type');
    if (grantType === null) {
      throw new HttpError(400, { error: 'invalid_request', error_description: 'grant_type is required' });
    }
    const client = authenticateClient(request, form);
    if (grantType !== 'client_credentials') {
      throw new HttpError(400, {
        error: 'unsupported_grant_type',
        error_description: 'only client_credentials is supported',
      });
    }
    const scope = form.get('scope') ?? undefined;
    const accessToken = await mint({
      sub: client.subject ?? client.id,
      groups: client.groups,
      clientId: client.id,
      ...(scope !== undefined ? { scope } : {}),
    });
    const body: Record<string, unknown> = { access_token: accessToken, token_type: 'Bearer', expires_in: ttlDefault };
    if (scope !== undefined) body.scope = scope;
    sendJson(response, 200, body, { 'cache-control': 'no-store', pragma: 'no-cache' });
  };

  const handleDevMint = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json') {
      throw new HttpError(400, { error: 'invalid_request', error_description: 'expected content-type application/json' });
    }
    let input: unknown;
    try {
      input = JSON.parse(await readBody(request));
    } catch {
      throw new HttpError(400, { error: 'invalid_request', error_description: 'expected a JSON body' });
    }
    const body = (input ?? {}) as { sub?: unknown; groups?: unknown; ttlSeconds?: unknown };
    if (typeof body.sub !== 'string' || body.sub.length === 0) {
      throw new HttpError(400, { error: 'invalid_request', error_description: 'expected sub to be a non-empty string' });
    }
    if (!Array.isArray(body.groups) || body.groups.some((group) => typeof group !== 'string')) {
      throw new HttpError(400, { error: 'invalid_request', error_description: 'expected groups to be an array of strings' });
    }
    if (
      body.ttlSeconds !== undefined &&
      (typeof body.ttlSeconds !== 'number' || !Number.isFinite(body.ttlSeconds) || body.ttlSeconds <= 0)
    ) {
      throw new HttpError(400, { error: 'invalid_request', error_description: 'expected ttlSeconds to be a positive number' });
    }
    const ttlSeconds = (body.ttlSeconds as number | undefined) ?? ttlDefault;
    const accessToken = await mint({ sub: body.sub, groups: body.groups as string[], ttlSeconds });
    sendJson(response, 200, { access_token: accessToken, token_type: 'Bearer', expires_in: ttlSeconds }, {
      'cache-control': 'no-store',
    });
  };

  const issuerPath = (): string => new URL(issuer).pathname.replace(/\/+$/, '');

  const route = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://dev-issuer.invalid');
    // Serve both at the issuer's path (when issuerUrl has one) and at the root.
    const prefix = issuerPath();
    const path = prefix && url.pathname.startsWith(`${prefix}/`) ? url.pathname.slice(prefix.length) : url.pathname;
    const method = request.method ?? 'GET';
    const allow = (methods: string): void => {
      if (!methods.split(',').includes(method)) throw new HttpError(405, { error: 'method_not_allowed' }, { allow: methods });
    };
    switch (path) {
      case '/.well-known/openid-configuration':
        allow('GET,HEAD');
        return sendJson(response, 200, discovery());
      case '/jwks':
        allow('GET,HEAD');
        jwksRequests += 1;
        return sendJson(response, 200, { keys: keys.map((key) => key.publicJwk) }, {}, 'application/jwk-set+json');
      case '/token':
        allow('POST');
        return handleToken(request, response);
      case '/dev/mint':
        allow('POST');
        return handleDevMint(request, response);
      default:
        throw new HttpError(404, { error: 'not_found' });
    }
  };

  const server = createServer((request, response) => {
    route(request, response).catch((error: unknown) => {
      if (response.headersSent) {
        response.destroy();
        return;
      }
      if (error instanceof HttpError) {
        sendJson(response, error.status, error.body, error.headers);
      } else {
        sendJson(response, 500, { error: 'server_error' });
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  issuer = (options.issuerUrl ?? `http://${hostForUrl}:${port}`).replace(/\/+$/, '');

  return {
    issuer,
    port,
    tokenEndpoint: `${issuer}/token`,
    mint: (mintOptions) => mint(mintOptions),
    rotateKey: async () => {
      keys.push(await newSigningKey());
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
    get jwksRequests() {
      return jwksRequests;
    },
  };
}

function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
  contentType = 'application/json',
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  response.end(text);
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(400, { error: 'invalid_request', error_description: 'request body too large' }));
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}
