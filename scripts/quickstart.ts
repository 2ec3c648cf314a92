/**
 * @module scripts/quickstart
 * `npm start`: provisions what is missing, then runs the whole data path on 127.0.0.1 on the quickstart's fixed
 * ports with examples/quickstart.yaml, writes .tollgate/quickstart.json and a Java client config for the analyst
 * (.tollgate/kafka-analyst.properties), and runs until Ctrl-C (or SIGTERM), when it stops everything it started.
 *
 * `npm run quickstart:kube` (`--kube`) adds a real Kubernetes API server behind Envoy's gateway listener
 * (https://127.0.0.1:16443, TLS by Envoy with a CA written to .tollgate/kube-ca.crt; the API server on a port of
 * its own) and one kubeconfig per dev-issuer client in .tollgate/kubeconfig-<client-id>.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../src/config/load.ts';
import { javaOAuthClientProperties } from './lib/kafka.ts';
import { QUICKSTART_CONFIG, startStack } from './lib/stack.ts';
import { KAFKA_LIBS_DIR, KUBECTL_BINARY, REPO_ROOT } from './lib/paths.ts';

export const STATE_FILE = path.join(REPO_ROOT, '.tollgate', 'quickstart.json');
/** Java client settings for the analyst (client_credentials against the dev issuer), for Kafka's console tools. */
export const ANALYST_CLIENT_PROPERTIES = path.join(REPO_ROOT, '.tollgate', 'kafka-analyst.properties');
/** With --kube: the CA of Envoy's Kubernetes gateway certificate, and one kubeconfig per client. */
export const KUBE_CA_FILE = path.join(REPO_ROOT, '.tollgate', 'kube-ca.crt');
export const kubeconfigFile = (clientId: string) => path.join(REPO_ROOT, '.tollgate', `kubeconfig-${clientId}`);
/**
 * Where the quickstart's audit file sinks write: a relative `path` is taken from the repository (where `npm start`
 * runs), not from the run folder the config is copied to, which each start wipes: the chain goes on across runs.
 */
export function quickstartAuditPaths(doc: Record<string, any>): void {
  for (const sink of doc['audit']?.sinks ?? []) {
    if (sink?.type === 'file' && typeof sink.path === 'string' && !path.isAbsolute(sink.path)) sink.path = path.join(REPO_ROOT, sink.path);
  }
}
/** Kubeconfig tokens last a working day; run the quickstart again for fresh ones. */
const KUBECONFIG_TOKEN_TTL_SECONDS = 12 * 3600;


const log = (line: string) => process.stdout.write(`quickstart: ${line}\n`);

async function main(): Promise<void> {
  const withKube = process.argv.slice(2).includes('--kube');
  const unknown = process.argv.slice(2).filter((a) => a !== '--kube');
  if (unknown.length > 0) throw new Error(`unknown argument ${unknown.join(' ')} (the only option is --kube)`);
  const config = parseConfig(fs.readFileSync(QUICKSTART_CONFIG, 'utf8'), QUICKSTART_CONFIG);
  const qs = config.quickstart!;
  // Each run starts clean: a broker left behind by a killed run would refuse its data (another cluster id).
  const workDir = path.join(REPO_ROOT, '.tollgate', 'run');
  fs.rmSync(workDir, { recursive: true, force: true });
  const at = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));
  const stack = await startStack({
    workDir,
    ports: {
      httpListener: qs.listeners.http, kafkaListener: qs.listeners.kafka, issuer: qs.issuer.port,
      grpc: at(config.server.grpc.address), admin: at(config.server.admin.address), envoyAdmin: 19000,
      kubernetesListener: qs.listeners.kubernetes,
    },
    kubernetes: withKube,
    progress: log,
    editConfig: quickstartAuditPaths,
  });

  const kube = stack.kubernetes;
  const kubeconfigs: string[] = [];
  if (kube !== undefined) {
    fs.mkdirSync(path.dirname(KUBE_CA_FILE), { recursive: true });
    fs.copyFileSync(kube.caFile, KUBE_CA_FILE);
    for (const client of qs.issuer.clients) {
      const token = await stack.mintToken(client.id, client.groups, KUBECONFIG_TOKEN_TTL_SECONDS);
      const file = kubeconfigFile(client.id);
      fs.writeFileSync(file, kube.kubeconfig(client.id, token, KUBE_CA_FILE), { mode: 0o600 });
      kubeconfigs.push(file);
    }
  }

  const auditFile = stack.config.audit.sinks.find((sink) => sink.type === 'file')?.path;
  const state = {
    issuer: stack.issuer.issuer,
    tokenEndpoint: stack.issuer.tokenEndpoint,
    http: stack.httpUrl,
    kafka: stack.kafkaBootstrap,
    kafkaClientProperties: ANALYST_CLIENT_PROPERTIES,
    tollgate: { grpc: `127.0.0.1:${stack.ports.grpc}`, admin: stack.adminUrl, config: stack.tollgateConfigFile, log: path.join(stack.workDir, 'tollgate.log') },
    ...(auditFile !== undefined && { audit: auditFile }),
    envoy: { admin: `http://127.0.0.1:${stack.ports.envoyAdmin}`, log: stack.envoy.logFile },
    kafkaBroker: { internal: stack.kafka.brokers[0]!.address, log: stack.kafka.brokers[0]!.logFile },
    demoUpstream: `http://127.0.0.1:${stack.upstream.port}`,
    topics: qs.topics,
    pids: { quickstart: process.pid, tollgate: stack.tollgate.pid, envoy: stack.envoy.pid, kafka: stack.kafka.brokers[0]!.pid },
    ...(kube !== undefined && {
      kubernetes: { url: kube.url, caFile: KUBE_CA_FILE, apiServer: kube.apiServer.url, kubectl: KUBECTL_BINARY, kubeconfigs, pids: kube.apiServer.pids },
    }),
  };
  fs.mkdirSync(path.dirname(STATE_FILE), { recursive: true });
  fs.writeFileSync(STATE_FILE, JSON.stringify(state, null, 2) + '\n');
  const analyst = qs.issuer.clients.find((c) => c.groups.includes('analysts'));
  if (analyst !== undefined) fs.writeFileSync(ANALYST_CLIENT_PROPERTIES, javaOAuthClientProperties(stack.issuer.tokenEndpoint, analyst.id, analyst.secret));
  const relative = (file: string) => path.relative(process.cwd(), file) || '.';

  const clients = qs.issuer.clients.map((c) => `${c.id} (${c.groups.join(', ')})`).join(', ');
  process.stdout.write(`
tollgate quickstart is up (state in ${path.relative(process.cwd(), STATE_FILE)}):
  HTTP through Envoy   ${stack.httpUrl}        GET /api/customers, /api/events (SSE), /api/watch, /admin/*${kube === undefined ? '' : `
  Kubernetes via Envoy ${kube.url}       kubeconfigs .tollgate/kubeconfig-<client id>, CA ${relative(KUBE_CA_FILE)}`}
  Kafka through Envoy  ${stack.kafkaBootstrap}        SASL OAUTHBEARER (a token of the issuer below); topics: ${qs.topics.join(', ')}
  dev OIDC issuer      ${stack.issuer.issuer}   token endpoint ${stack.issuer.tokenEndpoint}
                       client_credentials clients (secret <id>-secret): ${clients}
  tollgate admin       ${stack.adminUrl}/readyz  /metrics
  approver page        ${stack.adminUrl}/approvals   (sign in with an approver's token; or \`tollgate approvals\`)

Try:
  export TOKEN=$(npm run -s tollgate -- token --sub alice --groups analysts)
  curl -s -H "authorization: Bearer $TOKEN" ${stack.httpUrl}/api/customers
  curl -s -H "authorization: Bearer $TOKEN" ${stack.httpUrl}/admin/users      # 403: admin routes are admin-only
  curl -s ${stack.httpUrl}/api/customers                                      # 401: no token

  # Kafka with kafkajs and the token above: analysts may produce to orders and consume with groups analytics-*
  node --input-type=module -e "
    import { Kafka } from 'kafkajs';
    const kafka = new Kafka({ brokers: ['${stack.kafkaBootstrap}'],
      sasl: { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: process.env.TOKEN }) } });
    const producer = kafka.producer(); await producer.connect();
    await producer.send({ topic: 'orders', messages: [{ value: 'hello from alice' }] }); await producer.disconnect();
    const consumer = kafka.consumer({ groupId: 'analytics-try' }); await consumer.connect();
    await consumer.subscribe({ topic: 'orders', fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => console.log(String(message.value)) });"
  # (producing to admin.audit-config instead fails with TOPIC_AUTHORIZATION_FAILED)

  # Masking: payments-app publishes a payment; analysts read it with the card cut to its last 4 digits and the
  # email redacted, payments-admin reads it as published. Analysts may publish to analytics, but not a card number.
  export PAYMENTS_TOKEN=$(npm run -s tollgate -- token --sub payments-app --groups payments-admin)
  node --input-type=module -e "
    import { Kafka } from 'kafkajs';
    const as = (token) => new Kafka({ brokers: ['${stack.kafkaBootstrap}'], sasl: { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: token }) } });
    const producer = as(process.env.PAYMENTS_TOKEN).producer(); await producer.connect();
    await producer.send({ topic: 'payments', messages: [{ value: JSON.stringify({ card: { number: '4111111111111111' }, customer: { name: 'Ada', email: 'ada@example.com' } }) }] });
    await producer.disconnect();
    const consumer = as(process.env.TOKEN).consumer({ groupId: 'analytics-payments-try' }); await consumer.connect();
    await consumer.subscribe({ topic: 'payments', fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => console.log(String(message.value)) });"

  # Kafka's console producer as the analyst-app client (client_credentials at the dev issuer's token endpoint)
  java -Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=${stack.issuer.tokenEndpoint} -cp "${relative(KAFKA_LIBS_DIR)}/*" \\
    org.apache.kafka.tools.ConsoleProducer --bootstrap-server ${stack.kafkaBootstrap} --topic orders \\
    --producer.config ${relative(ANALYST_CLIENT_PROPERTIES)}

${kube === undefined ? '' : `
  # Kubernetes through Envoy's gateway (${kube.url}); the API server itself is at ${kube.apiServer.url}.
  # One kubeconfig per client above; ci-bot reads pods, configmaps and secrets in demo, with Secret values masked.
  export KUBECONFIG=${relative(kubeconfigFile('ci-bot'))}
  ${relative(KUBECTL_BINARY)} get pods,configmaps,secrets                 # namespace demo
  ${relative(KUBECTL_BINARY)} get secret db-credentials -o yaml           # data: [REDACTED]
  ${relative(KUBECTL_BINARY)} get secrets -A                              # Forbidden: cluster-wide secret listing
  ${relative(KUBECTL_BINARY)} delete namespace demo                       # Forbidden: namespaces are never deleted
  ${relative(KUBECTL_BINARY)} get secrets -w                              # a watch, masked event by event
`}
  # Just-in-time approval: DeleteTopics by anyone but platform-admins is answered POLICY_VIOLATION naming an
  # approval id; a platform admin approves it (here or on the approver page), and the retry goes through.
  export APPROVER_TOKEN=$(npm run -s tollgate -- token --sub pat --groups platform-admins)
  npm run -s tollgate -- approvals list --token $APPROVER_TOKEN
  npm run -s tollgate -- approvals approve <approval id> --token $APPROVER_TOKEN
${auditFile === undefined ? '' : `
  # Audit: every decision above is a record in tollgate's log and in ${relative(auditFile)}, hash-chained.
  npm run -s tollgate -- audit verify ${relative(auditFile)}
  npm run -s tollgate -- audit replay --principal alice --since 15m --from ${relative(auditFile)}
`}
Ctrl-C stops everything.
`);

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    stack.stop().then(() => {
      fs.rmSync(STATE_FILE, { force: true });
      fs.rmSync(ANALYST_CLIENT_PROPERTIES, { force: true });
      for (const file of kubeconfigs) fs.rmSync(file, { force: true });
      if (kube !== undefined) fs.rmSync(KUBE_CA_FILE, { force: true });
      log('stopped');
      process.exit(0);
    }, (err: Error) => {
      process.stderr.write(`quickstart: stop failed: ${err.message}\n`);
      process.exit(1);
    });
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  // If tollgate or Envoy dies, the quickstart is no longer what it claims to be: say so and stop the rest.
  for (const child of [stack.tollgate]) {
    void child.exited.then((exit) => {
      if (stopping) return;
      process.stderr.write(`quickstart: ${child.name} exited unexpectedly (${JSON.stringify(exit)}); see ${child.logFile}\n`);
      shutdown('child exit');
    });
  }
}

main().catch((err: Error) => {
  process.stderr.write(`quickstart failed: ${err.message}\n`);
  process.exit(1);
});
