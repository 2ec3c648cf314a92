/**
 * @module admin/http
 * The admin listener: liveness, readiness (each check named, so an operator sees what is not ready), metrics, and
 * the routes other rooms mount on it (the approver API under /approvals).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface ReadinessCheck {
  readonly name: string;
  /** `ok` false makes /readyz answer 503; `detail` says why. */
  check(): { ok: boolean; detail?: string };
}

/** A path prefix another room serves on the admin listener, with its own methods and answers. */
export interface AdminRoute {
  readonly prefix: string;
  handle(req: IncomingMessage, res: ServerResponse): void;
}

export interface AdminServer {
  readonly address: AddressInfo;
  /** Draining: /readyz answers 503 so load balancers and Envoy health checks stop sending work. */
  setDraining(): void;
  close(): Promise<void>;
}

export async function startAdminServer(opts: { host: string; port: number; registry: Registry; checks: () => readonly ReadinessCheck[]; routes?: readonly AdminRoute[] }): Promise<AdminServer> {
  let draining = false;
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0]!;
    const route = opts.routes?.find((r) => url === r.prefix || url.startsWith(`${r.prefix}/`));
    if (route !== undefined) {
      route.handle(req, res);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (url === '/readyz') {
      const results = opts.checks().map((c) => ({ name: c.name, ...c.check() }));
      if (draining) results.unshift({ name: 'drain', ok: false, detail: 'shutting down' });
      const ready = results.every((r) => r.ok);
      res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ ready, checks: results }) + '\n');
    } else if (url === '/metrics') {
      opts.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': opts.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${err.message}\n`),
      );
    } else {
      const more = (opts.routes ?? []).map((r) => `, ${r.prefix}`).join('');
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: try /healthz, /readyz, /metrics${more}\n`);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => { server.off('error', reject); resolve(); });
  });
  return {
    address: server.address() as AddressInfo,
    setDraining: () => { draining = true; },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
