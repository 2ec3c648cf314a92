/**
 * @module admin/http
 * The admin listener: liveness, readiness (each check named, so an operator sees what is not ready) and metrics.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface ReadinessCheck {
  readonly name: string;
  /** `ok` false makes /readyz answer 503; `detail` says why. */
  check(): { ok: boolean; detail?: string };
}

export interface AdminServer {
  readonly address: AddressInfo;
  /** Draining: /readyz answers 503 so load balancers and Envoy health checks stop sending work. */
  setDraining(): void;
  close(): Promise<void>;
}

export async function startAdminServer(opts: { host: string; port: number; registry: Registry; checks: () => readonly ReadinessCheck[] }): Promise<AdminServer> {
  let draining = false;
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
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
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz, /readyz or /metrics\n');
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
