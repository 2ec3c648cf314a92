/**
 * Kafka clients authenticated by mTLS client certificates, end to end: real Envoy (envoy/kafka-mtls.yaml: TLS with a
 * required client certificate → network ext_authz → network ext_proc → tcp_proxy), tollgate in-process, a real
 * PLAINTEXT broker. kafkajs connects with a certificate whose URI SAN is a SPIFFE id and no SASL at all; tollgate's
 * ext_authz makes that id the connection's principal (groups from identity.mtls), and every Kafka request is then
 * decided by the rules as that principal.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import pino from 'pino';
import YAML from 'yaml';
import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import type { AuditRecord } from '../../src/audit/record.ts';
import { parseConfig } from '../../src/config/load.ts';
import { startServer, splitHostPort, type RunningServer } from '../../src/server.ts';
import { ensureEnvoy, ensureKafka } from '../../scripts/provision.ts';
import { createMtlsTestCertificates, type CertificateFiles, type MtlsTestCertificates } from '../../scripts/lib/certs.ts';
import { renderTemplate, startEnvoy, validateEnvoyConfig, type EnvoyProcess } from '../../scripts/lib/envoy.ts';
import { startKafka, type KafkaBroker } from '../../scripts/lib/kafka.ts';
import { REPO_ROOT, RUN_DIR } from '../../scripts/lib/paths.ts';
import { freePorts, LOOPBACK } from '../../scripts/lib/ports.ts';

const WRITER = 'spiffe://mesh.test/ns/shop/sa/orders-writer';
const STRANGER = 'spiffe://other.test/ns/shop/sa/orders-writer';
const TEMPLATE = path.join(REPO_ROOT, 'envoy', 'kafka-mtls.yaml');

let workDir: string;
let pki: MtlsTestCertificates;
let broker: KafkaBroker | undefined;
let tollgate: RunningServer | undefined;
let envoy: EnvoyProcess | undefined;
let listener: string;
const audit: AuditRecord[] = [];

function tollgateConfig(listenerPort: number): string {
  return YAML.stringify({
    server: { grpc: { address: `${LOOPBACK}:0` }, admin: { address: `${LOOPBACK}:0` }, drainTimeout: '1s' },
    identity: {
      mtls: {
        trustDomains: ['mesh.test'],
        groups: [{ subject: 'spiffe://mesh.test/ns/shop/*', groups: ['shop'] }],
      },
    },
    kafka: { brokers: [{ nodeId: 1, advertise: `${LOOPBACK}:${listenerPort}` }] },
    rules: [
      { name: 'shop-produces-and-consumes-orders', match: { group: 'shop', kafka: { operation: ['produce', 'consume'], topic: 'orders' } }, effect: 'allow' },
      { name: 'shop-uses-shop-consumer-groups', match: { group: 'shop', kafka: { operation: 'consume', group: 'shop-*' } }, effect: 'allow' },
      // Describable (consume implies describe), so a Produce to it is refused as the Produce request's own answer.
      { name: 'shop-reads-payments', match: { group: 'shop', kafka: { operation: 'consume', topic: 'payments' } }, effect: 'allow' },
    ],
  });
}

before(async () => {
  await ensureEnvoy();
  await ensureKafka();
  await fs.promises.mkdir(RUN_DIR, { recursive: true });
  workDir = await fs.promises.mkdtemp(path.join(RUN_DIR, 'kafka-mtls-'));
  pki = await createMtlsTestCertificates(path.join(workDir, 'pki'), { writer: WRITER, stranger: STRANGER });
  const [listenerPort, envoyAdmin] = await freePorts(2) as [number, number];
  listener = `${LOOPBACK}:${listenerPort}`;

  const starting = startKafka({ workDir: path.join(workDir, 'kafka') });
  const config = parseConfig(tollgateConfig(listenerPort), 'kafka-mtls.test.yaml');
  tollgate = await startServer(config, { logger: pino({ level: 'silent' }), audit: { write: (r) => audit.push(r) } });
  broker = await starting;
  await broker.createTopics(['orders', 'payments']);

  const grpc = splitHostPort(tollgate.grpcAddress);
  const rendered = renderTemplate(fs.readFileSync(TEMPLATE, 'utf8'), {
    ENVOY_ADMIN_PORT: envoyAdmin, KAFKA_LISTENER_PORT: listenerPort, TOLLGATE_HOST: grpc.host, TOLLGATE_PORT: grpc.port,
    BROKER_HOST: broker.host, BROKER_PORT: broker.port,
    TLS_SERVER_CERT: pki.server.cert, TLS_SERVER_KEY: pki.server.key, TLS_CLIENT_CA: pki.ca.cert,
  });
  await validateEnvoyConfig(rendered);
  envoy = await startEnvoy({ configYaml: rendered, adminPort: envoyAdmin, workDir: path.join(workDir, 'envoy') });
});

after(async () => {
  await envoy?.stop();
  await tollgate?.drain();
  await broker?.stop();
});

const read = (file: string) => fs.readFileSync(file, 'utf8');

function kafkaClient(clientId: string, certificate: CertificateFiles | undefined, extra: Partial<KafkaConfig> = {}): Kafka {
  return new Kafka({
    clientId,
    brokers: [listener],
    ssl: { ca: [read(pki.ca.cert)], ...(certificate && { cert: read(certificate.cert), key: read(certificate.key) }) },
    logLevel: logLevel.NOTHING,
    connectionTimeout: 5_000,
    ...extra,
  });
}

/** Audit records matching `filter`, waiting up to 5 s for at least one. */
async function auditWhere(filter: (r: AuditRecord) => boolean): Promise<AuditRecord[]> {
  for (let i = 0; i < 50; i++) {
    const found = audit.filter(filter);
    if (found.length > 0) return found;
    await new Promise((r) => setTimeout(r, 100));
  }
  return [];
}

/** One raw TLS connection that sends an ApiVersions request; how it ends (error code or close) and what came back. */
function rawTls(certificate: CertificateFiles | undefined): Promise<{ error?: string; received: number; localPort?: number }> {
  const { host, port } = splitHostPort(listener);
  return new Promise((resolve) => {
    let received = 0;
    let localPort: number | undefined;
    const socket = tls.connect({
      host, port, ca: [read(pki.ca.cert)],
      ...(certificate && { cert: read(certificate.cert), key: read(certificate.key) }),
    });
    const timer = setTimeout(() => { socket.destroy(); resolve({ error: 'timeout', received, ...(localPort !== undefined && { localPort }) }); }, 10_000);
    socket.on('secureConnect', () => {
      localPort = socket.localPort;
      // ApiVersions v0, correlation id 1, client id "raw".
      const body = Buffer.from([0, 18, 0, 0, 0, 0, 0, 1, 0, 3, 0x72, 0x61, 0x77]);
      const frame = Buffer.alloc(4 + body.length);
      frame.writeInt32BE(body.length, 0);
      body.copy(frame, 4);
      socket.write(frame);
    });
    socket.on('data', (chunk: Buffer) => { received += chunk.length; });
    socket.on('error', (err: NodeJS.ErrnoException) => { clearTimeout(timer); resolve({ error: err.code ?? err.message, received, ...(localPort !== undefined && { localPort }) }); });
    socket.on('close', () => { clearTimeout(timer); resolve({ received, ...(localPort !== undefined && { localPort }) }); });
  });
}

test('envoy/kafka-mtls.yaml: TLS with a required client certificate, then ext_authz, ext_proc forwarding its metadata, tcp_proxy', () => {
  const doc = YAML.parse(read(TEMPLATE).replace(/\$\{[A-Z_]+\}/g, '0'));
  const chain = doc.static_resources.listeners[0].filter_chains[0];
  assert.equal(chain.transport_socket.typed_config.require_client_certificate, true);
  assert.deepEqual(chain.filters.map((f: { name: string }) => f.name),
    ['envoy.filters.network.ext_authz', 'envoy.filters.network.ext_proc', 'envoy.filters.network.tcp_proxy']);
  const [authz, extProc] = chain.filters.map((f: { typed_config: Record<string, any> }) => f.typed_config);
  assert.equal(authz.failure_mode_allow, false);
  assert.equal(authz.include_peer_certificate, true);
  assert.equal(extProc.failure_mode_allow, false);
  assert.deepEqual(extProc.metadata_options.forwarding_namespaces.untyped, ['envoy.filters.network.ext_authz']);
});

test('a shop workload produces to orders and consumes it in a shop-* group with only its client certificate', async () => {
  const kafka = kafkaClient('mtls-e2e', pki.clients['writer']);
  const messages = Array.from({ length: 5 }, (_, i) => ({ key: `k${i}`, value: `order ${i} ${Date.now()}` }));
  const producer = kafka.producer();
  await producer.connect();
  try {
    await producer.send({ topic: 'orders', messages });
  } finally {
    await producer.disconnect();
  }

  const consumer = kafka.consumer({ groupId: `shop-e2e-${Date.now()}` });
  await consumer.connect();
  const received: string[] = [];
  try {
    await consumer.subscribe({ topic: 'orders', fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${received.length} of ${messages.length} messages within 30 s`)), 30_000);
      consumer.run({
        eachMessage: async ({ message }) => {
          received.push(message.value?.toString() ?? '');
          if (messages.every((m) => received.includes(m.value))) { clearTimeout(timer); resolve(); }
        },
      }).catch((err: unknown) => { clearTimeout(timer); reject(err as Error); });
    });
  } finally {
    await consumer.disconnect();
  }

  // ext_authz vouched for the connection; every Kafka request ran as the certificate's SPIFFE id.
  const vouched = await auditWhere((r) => r.event === 'kafka.mtls.allowed' && r.principal?.subject === WRITER);
  assert.ok(vouched.length > 0, 'a kafka.mtls.allowed record');
  assert.equal(vouched[0]!.principal?.issuer, 'spiffe://mesh.test');
  assert.ok(typeof vouched[0]!.principal?.expiresAt === 'number', 'expiry from the certificate');
  const requests = audit.filter((r) => r.event === 'kafka.request' && r.principal?.subject === WRITER);
  const apis = new Set(requests.map((r) => r.details?.['api']));
  for (const api of ['Produce', 'Fetch', 'JoinGroup', 'OffsetCommit']) assert.ok(apis.has(api), `an audited ${api} request (got ${[...apis].join(', ')})`);
  for (const r of requests) {
    assert.equal(r.principal?.authenticatedBy, 'mtls');
    assert.deepEqual(r.principal?.groups, ['shop']);
  }
  assert.ok(!audit.some((r) => r.event.startsWith('kafka.sasl.')), 'no SASL involved');
});

test('producing to a topic the rules do not allow (only consume): TOPIC_AUTHORIZATION_FAILED, audited as the SPIFFE id', async () => {
  const producer = kafkaClient('mtls-e2e-denied', pki.clients['writer'], { retry: { retries: 0 } }).producer({ retry: { retries: 0 } });
  await producer.connect();
  try {
    await assert.rejects(producer.send({ topic: 'payments', messages: [{ value: 'nope' }] }), (err: Error & { type?: string; cause?: { type?: string } }) => {
      assert.ok(err.type === 'TOPIC_AUTHORIZATION_FAILED' || err.cause?.type === 'TOPIC_AUTHORIZATION_FAILED' || /Topic authorization failed/.test(err.message), `${err.name}: ${err.message}`);
      return true;
    });
  } finally {
    await producer.disconnect();
  }
  const denied = await auditWhere((r) => r.event === 'kafka.request.denied' && r.details?.['api'] === 'Produce' && JSON.stringify(r.details).includes('payments'));
  assert.ok(denied.length > 0, 'a kafka.request.denied record for the Produce to payments');
  assert.equal(denied[0]!.principal?.subject, WRITER);
  assert.equal(denied[0]!.principal?.authenticatedBy, 'mtls');
});

test('a client without a certificate fails the TLS handshake: nothing reaches tollgate', async () => {
  const before = audit.length;
  const outcome = await rawTls(undefined);
  assert.equal(outcome.received, 0);
  // TLS 1.3: the client finishes its side of the handshake, then Envoy's certificate_required alert arrives.
  assert.equal(outcome.error, 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', JSON.stringify(outcome));
  await assert.rejects(kafkaClient('mtls-e2e-nocert', undefined, { retry: { retries: 0 } }).producer().connect());
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(audit.slice(before).map((r) => r.event), [], 'no audit record: the connection never reached a filter');
});

test('a certificate from another trust domain passes the handshake but ext_authz refuses the connection', async () => {
  const outcome = await rawTls(pki.clients['stranger']);
  assert.equal(outcome.received, 0, 'no Kafka response');
  assert.ok(outcome.localPort !== undefined, 'the TLS handshake itself succeeded');
  // send_tls_alert_on_denial: the client learns why instead of seeing a bare close.
  assert.equal(outcome.error, 'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED', JSON.stringify(outcome));
  const denied = await auditWhere((r) => r.event === 'kafka.mtls.denied' && r.connection?.['source.port'] === outcome.localPort);
  assert.equal(denied.length, 1, 'a kafka.mtls.denied record for that connection');
  assert.equal((denied[0]!.details as { code: string; peer: string }).code, 'trust_domain_unknown');
  assert.equal((denied[0]!.details as { code: string; peer: string }).peer, STRANGER);
  assert.match(denied[0]!.reason ?? '', /other\.test/);
  assert.ok(!audit.some((r) => r.principal?.subject === STRANGER), 'no request ran as the stranger');

  await assert.rejects(kafkaClient('mtls-e2e-stranger', pki.clients['stranger'], { retry: { retries: 0 } }).producer().connect());
  const stats = await (await fetch(`${envoy!.adminUrl}/stats?filter=ext_authz\\.kafka_mtls_authz\\.`)).text();
  assert.match(stats, /ext_authz\.kafka_mtls_authz\.denied: [1-9]/, stats);
  assert.match(stats, /ext_authz\.kafka_mtls_authz\.ok: [1-9]/, stats);
});
