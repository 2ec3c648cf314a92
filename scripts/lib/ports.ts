/**
 * @module scripts/lib/ports
 * Free TCP ports on 127.0.0.1 for brokers and proxies started by tests and the quickstart.
 *
 * The OS picks the port (listen on port 0), we close the listener and hand the number on. Another process could in
 * principle take it before our child binds it; on a test machine that window is small enough to accept, and the child
 * then fails loudly (its log says the address is in use) rather than silently talking to a stranger.
 */
import net from 'node:net';

export const LOOPBACK = '127.0.0.1';

/** Bind `127.0.0.1:0`, returning the listening server so callers can hold it while they bind more. */
function listenOnEphemeral(): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', (err) => reject(new Error(`freePort: could not bind ${LOOPBACK}:0: ${err.message}`)));
    server.listen({ host: LOOPBACK, port: 0, exclusive: true }, () => resolve(server));
  });
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

function portOf(server: net.Server): number {
  const address = server.address();
  if (address === null || typeof address === 'string') {
    throw new Error(`freePort: expected a TCP address from the listener, got ${String(address)}`);
  }
  return address.port;
}

/** One port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port!;
}

/**
 * `count` distinct free ports. All listeners stay open until every port is picked, so the OS cannot hand out the same
 * port twice (calling freePort() n times could).
 */
export async function freePorts(count: number): Promise<number[]> {
  if (!Number.isInteger(count) || count < 1) throw new Error(`freePorts: expected a positive integer count, got ${count}`);
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < count; i++) servers.push(await listenOnEphemeral());
    return servers.map(portOf);
  } finally {
    await Promise.all(servers.map(close));
  }
}
