/**
 * The Envoy harness against the real binary: templates, `--mode validate`, and a running Envoy that proxies a TCP
 * connection to a local echo server.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { ensureEnvoy } from '../../scripts/provision.ts';
import { renderTemplate, startEnvoy, validateEnvoyConfig } from '../../scripts/lib/envoy.ts';
import { freePorts } from '../../scripts/lib/ports.ts';
import { isProcessAlive } from '../../scripts/lib/process.ts';

/** The smallest useful bootstrap: one listener whose tcp_proxy forwards to one static upstream. */
const TCP_PROXY_TEMPLATE = `
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: \${ADMIN_PORT} } }
static_resources:
  listeners:
  - name: ingress
    address: { socket_address: { address: 127.0.0.1, port_value: \${LISTEN_PORT} } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: ingress
          cluster: upstream
  clusters:
  - name: upstream
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: upstream
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: \${UPSTREAM_PORT} } } }
`;

let echo: net.Server;
let echoPort: number;

before(async () => {
  await ensureEnvoy();
  echo = net.createServer((socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  echoPort = (echo.address() as net.AddressInfo).port;
});

after(async () => {
  await new Promise((resolve) => echo.close(resolve));
});

test('renderTemplate fills placeholders and throws naming an unknown one', () => {
  assert.equal(renderTemplate('port: ${PORT}, host: ${HOST}', { PORT: 8080, HOST: '127.0.0.1', UNUSED: 'x' }), 'port: 8080, host: 127.0.0.1');
  assert.throws(() => renderTemplate('a: 1\nport: ${PORTT}\n', { PORT: 1 }), /no value for placeholder \$\{PORTT\} \(line 2\)/);
  assert.throws(() => renderTemplate('port: ${ PORT}', { PORT: 1 }), /malformed placeholder "\$\{ PORT\}"/);
  assert.throws(() => renderTemplate('port: ${PORT}', { PORT: Number.NaN }), /expected a finite number/);
});

test('validateEnvoyConfig accepts a minimal static tcp_proxy bootstrap', async () => {
  const config = renderTemplate(TCP_PROXY_TEMPLATE, { ADMIN_PORT: 9901, LISTEN_PORT: 10000, UPSTREAM_PORT: 10001 });
  const output = await validateEnvoyConfig(config);
  assert.match(output, /configuration '.*' OK/);
});

test("validateEnvoyConfig rejects a broken bootstrap with Envoy's own message", async () => {
  const config = renderTemplate(TCP_PROXY_TEMPLATE, { ADMIN_PORT: 9901, LISTEN_PORT: 10000, UPSTREAM_PORT: 10001 })
    .replace('stat_prefix: ingress', 'stat_prefx: ingress');
  await assert.rejects(validateEnvoyConfig(config), (err: Error) => {
    assert.match(err.message, /envoy rejected the config/);
    // Envoy's own wording, naming the bad field (protobuf deliberately varies the spacing in this message).
    assert.match(err.message, /no\s+such\s+field:\s+'stat_prefx'/);
    return true;
  });
});

test('startEnvoy runs until /ready is LIVE, proxies TCP, and stops', async () => {
  const [adminPort, listenPort] = (await freePorts(2)) as [number, number];
  const envoy = await startEnvoy({
    configYaml: renderTemplate(TCP_PROXY_TEMPLATE, { ADMIN_PORT: adminPort, LISTEN_PORT: listenPort, UPSTREAM_PORT: echoPort }),
    adminPort,
    logLevel: 'info',
  });
  try {
    const ready = await fetch(`${envoy.adminUrl}/ready`);
    assert.equal((await ready.text()).trim(), 'LIVE');

    const reply = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(listenPort, '127.0.0.1', () => socket.end('ping through envoy'));
      let data = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (data += chunk));
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
    assert.equal(reply, 'ping through envoy');
  } finally {
    await envoy.stop();
  }
  assert.equal(isProcessAlive(envoy.pid), false, `envoy pid ${envoy.pid} still running after stop()`);
});

test('startEnvoy refuses an adminPort that the config does not use', async () => {
  const config = renderTemplate(TCP_PROXY_TEMPLATE, { ADMIN_PORT: 9901, LISTEN_PORT: 10000, UPSTREAM_PORT: 10001 });
  await assert.rejects(startEnvoy({ configYaml: config, adminPort: 9902 }), /adminPort is 9902 but the config's admin.*is 9901/);
});
