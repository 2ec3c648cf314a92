/**
 * @module dev/demo-upstream
 * The quickstart's HTTP upstream (not for production). It accepts only the credential tollgate injects, so the
 * quickstart shows that callers never hold the upstream's secret, and it serves the sensitive JSON that the
 * masking work will redact.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';

export interface DemoUpstream {
  readonly port: number;
  /** Requests seen, newest last: what reached the upstream (tests check which headers arrived). */
  readonly seen: ReadonlyArray<{ method: string; path: string; headers: http.IncomingHttpHeaders }>;
  close(): Promise<void>;
}

export const DEMO_CUSTOMERS = [
  { id: 1, name: 'Ada Lovelace', email: 'ada@example.com', card: { number: '4111111111111111', expiry: '12/29' } },
  { id: 2, name: 'Alan Turing', email: 'alan@example.org', card: { number: '5500005555555559', expiry: '03/28' } },
] as const;

function sameSecret(got: string, want: string): boolean {
  const a = Buffer.from(got);
  const b = Buffer.from(want);
  return a.length === b.length && timingSafeEqual(a, b);
}

export async function startDemoUpstream(opts: { port?: number; host?: string; token: string }): Promise<DemoUpstream> {
  const seen: Array<{ method: string; path: string; headers: http.IncomingHttpHeaders }> = [];
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    seen.push({ method: req.method ?? 'GET', path, headers: req.headers });
    if (seen.length > 1000) seen.shift();
    const json = (status: number, body: unknown) =>
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body) + '\n');
    if (!sameSecret(req.headers.authorization ?? '', `Bearer ${opts.token}`)) {
      json(401, { error: 'this upstream accepts only the credential tollgate injects' });
      return;
    }
    const caller = { subject: req.headers['x-tollgate-subject'] ?? null, groups: req.headers['x-tollgate-groups'] ?? null };
    if (path === '/api/customers') json(200, { customers: DEMO_CUSTOMERS, caller });
    else if (path === '/api/whoami') json(200, caller);
    else if (path === '/api/bulk') {
      // A large body in many chunks, so the streamed ext_proc path is exercised across chunk boundaries.
      const count = Math.min(Number(new URL(req.url ?? '/', 'http://x').searchParams.get('n') ?? '1000') || 0, 200_000);
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      for (let i = 0; i < count; i++) res.write(JSON.stringify({ seq: i, email: `user${i}@example.com`, card: '4111111111111111' }) + '\n');
      res.end();
    }
    else if (path === '/api/watch') {
      // A Kubernetes-style watch stream (NDJSON, `application/json;stream=watch`) whose writes deliberately end in the
      // middle of a card number: a masker working per chunk instead of per event would let both halves through.
      const count = Math.min(Number(new URL(req.url ?? '/', 'http://x').searchParams.get('n') ?? '4') || 0, 1_000);
      res.writeHead(200, { 'content-type': 'application/json;stream=watch' });
      let sent = 0;
      const next = () => {
        if (sent >= count || res.destroyed) { res.end(); return; }
        const event = JSON.stringify({ type: sent === 0 ? 'ADDED' : 'MODIFIED', object: DEMO_CUSTOMERS[sent % DEMO_CUSTOMERS.length] }) + '\n';
        const cut = event.indexOf('"number":"') + '"number":"'.length + 6;
        res.write(event.slice(0, cut));
        sent++;
        setTimeout(() => { if (!res.destroyed) res.write(event.slice(cut)); setTimeout(next, 50); }, 50);
      };
      next();
    }
    else if (path === '/api/events') {
      // Server-sent events: one customer per event, spaced out so a client sees them arrive one by one.
      const params = new URL(req.url ?? '/', 'http://x').searchParams;
      const count = Math.min(Number(params.get('n') ?? '6') || 0, 10_000);
      const interval = Math.min(Number(params.get('intervalMs') ?? '250') || 0, 5_000);
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      let sent = 0;
      const next = () => {
        if (sent >= count || res.destroyed) { res.end(); return; }
        const customer = DEMO_CUSTOMERS[sent % DEMO_CUSTOMERS.length]!;
        // Each event goes out in two writes cut inside the card number, so a per-chunk masker would leak both halves.
        const event = `id: ${sent}\nevent: customer\ndata: ${JSON.stringify(customer)}\n\n`;
        const cut = event.indexOf('"number":"') + '"number":"'.length + 6;
        res.write(event.slice(0, cut));
        sent++;
        setTimeout(() => { if (!res.destroyed) res.write(event.slice(cut)); setTimeout(next, interval); }, Math.min(interval, 50));
      };
      next();
    }
    else if (path.startsWith('/admin/')) json(200, { admin: true, path, caller });
    else json(404, { error: `no route ${path}` });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
