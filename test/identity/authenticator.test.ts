import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { pino } from 'pino';
import { startDevIssuer } from '../../src/dev/oidc-issuer.ts';
import type { DevIssuer } from '../../src/dev/oidc-issuer.ts';
import { Authenticator, parseBearerHeader } from '../../src/identity/authenticator.ts';
import { IdentityError } from '../../src/identity/errors.ts';
import type { IdentityErrorCode } from '../../src/identity/errors.ts';

const AUDIENCE = 'tollgate';

function code(fn: () => unknown): IdentityErrorCode | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof IdentityError) return error.code;
    throw error;
  }
  return undefined;
}

async function rejectedCode(promise: Promise<unknown>): Promise<IdentityErrorCode> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof IdentityError, String(error));
    return error.code;
  }
  assert.fail('expected a rejection');
}

function capture(): { logger: ReturnType<typeof pino>; lines: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'));
      callback();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines: () => chunks.join('') };
}

describe('parseBearerHeader', () => {
  it('extracts exactly one token, scheme case-insensitive', () => {
    assert.equal(parseBearerHeader('Bearer abc.def.ghi'), 'abc.def.ghi');
    assert.equal(parseBearerHeader('bearer abc.def.ghi'), 'abc.def.ghi');
    assert.equal(parseBearerHeader('BEARER   abc.def-_ghi '), 'abc.def-_ghi');
  });

  it('reports a missing token as token_missing', () => {
    assert.equal(code(() => parseBearerHeader(undefined)), 'token_missing');
    assert.equal(code(() => parseBearerHeader('')), 'token_missing');
    assert.equal(code(() => parseBearerHeader('   ')), 'token_missing');
    assert.equal(code(() => parseBearerHeader('Bearer')), 'token_missing');
    assert.equal(code(() => parseBearerHeader('Bearer   ')), 'token_missing');
  });

  it('reports anything else as token_malformed without echoing the credential', () => {
    assert.equal(code(() => parseBearerHeader('Bearer a b')), 'token_malformed');
    assert.equal(code(() => parseBearerHeader('Bearer a"b')), 'token_malformed');
    assert.equal(code(() => parseBearerHeader('abc.def.ghi')), 'token_malformed');
    try {
      parseBearerHeader('Basic c2VjcmV0OnBhc3N3b3Jk');
      assert.fail('expected a throw');
    } catch (error) {
      assert.ok(error instanceof IdentityError);
      assert.equal(error.code, 'token_malformed');
      assert.match(error.message, /found scheme "Basic"/);
      assert.ok(!error.message.includes('c2VjcmV0OnBhc3N3b3Jk'));
    }
    try {
      parseBearerHeader('eyJsecret-token');
      assert.fail('expected a throw');
    } catch (error) {
      assert.ok(error instanceof IdentityError);
      assert.ok(!error.message.includes('eyJsecret-token'));
    }
  });
});

describe('Authenticator', () => {
  let first: DevIssuer;
  let second: DevIssuer;
  let stranger: DevIssuer;

  before(async () => {
    first = await startDevIssuer({ clients: [], audience: AUDIENCE, kid: 'shared-kid' });
    second = await startDevIssuer({ clients: [], audience: AUDIENCE, kid: 'shared-kid', groupsClaim: 'realm_access.roles' });
    stranger = await startDevIssuer({ clients: [], audience: AUDIENCE });
  });

  after(async () => {
    await Promise.all([first.close(), second.close(), stranger.close()]);
  });

  it('routes tokens to the verifier of their issuer, logs key loads, never tokens', async () => {
    const { logger, lines } = capture();
    const fetches: Array<[string, boolean]> = [];
    const authenticator = new Authenticator({
      oidc: [
        { issuer: first.issuer, audiences: [AUDIENCE], groupsClaim: 'groups', algorithms: ['RS256'] },
        { issuer: second.issuer, audiences: [AUDIENCE], groupsClaim: 'realm_access.roles', algorithms: ['RS256'] },
      ],
      logger,
      onJwksFetch: (issuer, ok) => fetches.push([issuer, ok]),
    });
    await authenticator.start();
    assert.equal(authenticator.ready(), true);
    assert.deepEqual(
      fetches.sort(),
      [
        [first.issuer, true],
        [second.issuer, true],
      ].sort(),
    );

    const a = await first.mint({ sub: 'alice', groups: ['sre'] });
    const b = await second.mint({ sub: 'bob', groups: ['platform-admins'] });
    assert.deepEqual(await authenticator.authenticateBearer(a), {
      subject: 'alice',
      groups: ['sre'],
      issuer: first.issuer,
      authenticatedBy: 'oidc',
      expiresAt: decodeJwt(a).exp,
    });
    const principal = await authenticator.authenticateHeader(`Bearer ${b}`);
    assert.equal(principal.issuer, second.issuer);
    assert.deepEqual(principal.groups, ['platform-admins']);

    // The second issuer's key claiming the first issuer: routed to the first verifier, signature fails.
    const forged = await second.mint({ sub: 'bob', groups: ['admins'], extraClaims: { iss: first.issuer } });
    assert.equal(await rejectedCode(authenticator.authenticateBearer(forged)), 'signature_invalid');
    // An issuer nobody configured.
    const unknown = await stranger.mint({ sub: 'eve', groups: [] });
    assert.equal(await rejectedCode(authenticator.authenticateBearer(unknown)), 'issuer_unknown');
    assert.equal(await rejectedCode(authenticator.authenticateBearer('')), 'token_missing');
    assert.equal(await rejectedCode(authenticator.authenticateBearer('junk')), 'token_malformed');
    assert.equal(await rejectedCode(authenticator.authenticateHeader(undefined)), 'token_missing');
    const noIss = await first.mint({ sub: 'alice', groups: [], extraClaims: { iss: undefined } });
    assert.equal(await rejectedCode(authenticator.authenticateBearer(noIss)), 'token_malformed');

    const health = authenticator.health();
    assert.deepEqual(
      health.map((h) => [h.issuer, h.ready, h.jwksFetches]),
      [
        [first.issuer, true, 1],
        [second.issuer, true, 1],
      ],
    );
    const log = lines();
    assert.match(log, /JWKS loaded/);
    for (const token of [a, b, forged, unknown]) {
      assert.ok(!log.includes(token.split('.')[2] as string), 'no token in the logs');
    }
    authenticator.close();
  });

  it('resolves start() when an issuer is down, reports it not ready and retries in the background', async () => {
    const { logger, lines } = capture();
    const down = await startDevIssuer({ clients: [], audience: AUDIENCE });
    const downIssuer = down.issuer;
    await down.close();
    const authenticator = new Authenticator({
      oidc: [
        { issuer: first.issuer, audiences: [AUDIENCE], groupsClaim: 'groups', algorithms: ['RS256'] },
        { issuer: downIssuer, audiences: [AUDIENCE], groupsClaim: 'groups', algorithms: ['RS256'], fetchTimeoutMs: 1000 },
      ],
      logger,
      retry: { initialDelayMs: 50, maxDelayMs: 100 },
    });
    await authenticator.start();
    assert.equal(authenticator.ready(), false);
    const [up, notUp] = authenticator.health();
    assert.equal(up?.ready, true);
    assert.equal(notUp?.ready, false);
    assert.match(notUp?.lastError ?? '', /discovery/);
    assert.match(lines(), /start-up failed; retrying/);
    // The healthy issuer keeps working.
    const token = await first.mint({ sub: 'alice', groups: [] });
    assert.equal((await authenticator.authenticateBearer(token)).subject, 'alice');
    authenticator.close();
  });

  it('refuses the same issuer twice', () => {
    const oidc = { issuer: 'https://idp.example.test', audiences: [AUDIENCE], groupsClaim: 'groups', algorithms: ['RS256'] };
    assert.throws(() => new Authenticator({ oidc: [oidc, oidc] }), /configured twice/);
  });
});
