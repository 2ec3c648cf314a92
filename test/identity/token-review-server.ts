/**
 * A stand-in for the Kubernetes API server's TokenReview endpoint, over HTTPS, answering the way kube-apiserver
 * does (authentication.k8s.io/v1): 201 with the review echoed back and a status; an unknown token or a token for
 * other audiences gets `status.error` and no `authenticated`; a reviewer without a valid credential gets a 401
 * Status, one without the right to create tokenreviews a 403 Status. The real API server comes in end-to-end tests;
 * this one lets unit tests make it fail in every way on purpose.
 */
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface KnownToken {
  readonly username: string;
  readonly uid?: string;
  readonly groups?: readonly string[];
  /** The token's own audiences (its `aud`). */
  readonly audiences: readonly string[];
}

export type Behaviour =
  | 'answer' // review like the API server
  | 'unauthorized' // tollgate's credential is not accepted
  | 'forbidden' // tollgate's credential lacks system:auth-delegator
  | 'error' // 500
  | 'no-audiences' // authenticates without audiences: an API server that is not audience-aware
  | 'not-a-review' // 201 with something else
  | 'hang'; // accepts the request and never answers

export interface Review {
  readonly authorization: string | undefined;
  readonly path: string | undefined;
  readonly body: { apiVersion?: string; kind?: string; spec?: { token?: string; audiences?: string[] } };
}

export interface TokenReviewServer {
  readonly url: string;
  readonly reviews: Review[];
  behaviour: Behaviour;
  close(): Promise<void>;
}

export const API_SERVER_AUDIENCE = 'https://kubernetes.default.svc.cluster.local';
const REVIEWER_USER = 'system:serviceaccount:tollgate:tollgate';

function status(res: ServerResponse, code: number, reason: string, message: string): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }));
}

export async function startTokenReviewServer(options: {
  cert: string; key: string; reviewerToken: string; tokens: Readonly<Record<string, KnownToken>>;
}): Promise<TokenReviewServer> {
  const reviews: Review[] = [];
  const hanging = new Set<ServerResponse>();
  const state = { behaviour: 'answer' as Behaviour };

  const handle = (req: IncomingMessage, res: ServerResponse, text: string) => {
    const body = JSON.parse(text) as Review['body'];
    reviews.push({ authorization: req.headers.authorization, path: req.url, body });
    if (state.behaviour === 'hang') { hanging.add(res); return; }
    if (req.method !== 'POST' || req.url !== '/apis/authentication.k8s.io/v1/tokenreviews') return status(res, 404, 'NotFound', 'the server could not find the requested resource');
    if (state.behaviour === 'unauthorized' || req.headers.authorization !== `Bearer ${options.reviewerToken}`) return status(res, 401, 'Unauthorized', 'Unauthorized');
    if (state.behaviour === 'forbidden') {
      return status(res, 403, 'Forbidden', `tokenreviews.authentication.k8s.io is forbidden: User "${REVIEWER_USER}" cannot create resource "tokenreviews" in API group "authentication.k8s.io" at the cluster scope`);
    }
    if (state.behaviour === 'error') return status(res, 500, 'InternalError', 'Internal error occurred: etcdserver: request timed out');
    if (state.behaviour === 'not-a-review') {
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'ConfigMap', apiVersion: 'v1', data: {} }));
      return;
    }
    const wanted = body.spec?.audiences && body.spec.audiences.length > 0 ? body.spec.audiences : [API_SERVER_AUDIENCE];
    const known = options.tokens[body.spec?.token ?? ''];
    let reviewStatus: Record<string, unknown>;
    if (known === undefined) {
      reviewStatus = { user: {}, error: '[invalid bearer token, token lookup failed]' };
    } else {
      const granted = known.audiences.filter((a) => wanted.includes(a));
      reviewStatus = granted.length === 0
        ? { user: {}, error: `[invalid bearer token, token audiences ${JSON.stringify(known.audiences)} is invalid for the target audiences ${JSON.stringify(wanted)}]` }
        : {
          authenticated: true,
          user: { username: known.username, ...(known.uid && { uid: known.uid }), groups: [...(known.groups ?? []), 'system:authenticated'] },
          ...(state.behaviour !== 'no-audiences' && { audiences: granted }),
        };
    }
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end(JSON.stringify({
      kind: 'TokenReview', apiVersion: 'authentication.k8s.io/v1', metadata: { creationTimestamp: null },
      spec: body.spec, status: reviewStatus,
    }));
  };

  const server = https.createServer({ cert: options.cert, key: options.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8') || '{}'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    reviews,
    get behaviour() { return state.behaviour; },
    set behaviour(value: Behaviour) { state.behaviour = value; },
    close: () => new Promise<void>((resolve) => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
