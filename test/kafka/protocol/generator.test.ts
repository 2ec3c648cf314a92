/**
 * The codec generator: the committed output matches Kafka's specs (`--check`), the output follows the specs (a
 * modified spec gives a different file), unknown spec attributes fail loudly, and the generated API table agrees
 * with the hand table the session has used so far (src/kafka/protocol/api-keys.ts).
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureKafka } from '../../../scripts/provision.ts';
import { generateKafkaProtocol, GENERATED_DIR, fileBaseName, staleFiles } from '../../../scripts/generate-kafka-protocol.ts';
import { readKafkaMessageSpecs, stripJsonComments } from '../../../scripts/lib/kafka-specs.ts';
import type { SpecFile } from '../../../scripts/lib/kafka-specs.ts';
import { KAFKA_VERSION, REPO_ROOT } from '../../../scripts/lib/paths.ts';
import { apiKeyInfo, apiKeyName, requestHeaderVersion } from '../../../src/kafka/protocol/api-keys.ts';
import { API_TABLE, KAFKA_SPEC_VERSION } from '../../../src/kafka/protocol/generated/api-table.ts';
import { requestHeaderVersionFor, responseHeaderVersionFor } from '../../../src/kafka/protocol/messages.ts';

let specs: SpecFile[];

before(async () => {
  await ensureKafka();
  specs = readKafkaMessageSpecs();
});

function withSpec(name: string, change: (spec: Record<string, unknown>) => void): SpecFile[] {
  return specs.map((file) => {
    if (file.fileName !== name) return file;
    const spec = structuredClone(file.spec) as Record<string, unknown>;
    change(spec);
    return { fileName: file.fileName, spec };
  });
}

describe('generate-kafka-protocol', () => {
  it('--check passes: the committed files are what the specs in the jar give', () => {
    const result = spawnSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'generate-kafka-protocol.ts'), '--check'], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr, '');
  });

  it('reads every request and response spec, and the two headers, from the kafka-clients jar', () => {
    const names = specs.map((s) => s.fileName);
    assert.ok(names.includes('ProduceRequest.json') && names.includes('FetchResponse.json'));
    assert.ok(names.includes('RequestHeader.json') && names.includes('ResponseHeader.json'));
    assert.equal(names.filter((n) => n.endsWith('Request.json')).length, names.filter((n) => n.endsWith('Response.json')).length);
    assert.equal(KAFKA_SPEC_VERSION, KAFKA_VERSION);
  });

  it('is pure and follows the specs: an added tagged field and a new version change produce.ts and the table only', () => {
    const original = generateKafkaProtocol(specs, KAFKA_VERSION);
    assert.deepEqual(generateKafkaProtocol(specs, KAFKA_VERSION), original, 'same specs, same output');

    const edited = generateKafkaProtocol(
      withSpec('ProduceRequest.json', (spec) => {
        spec['validVersions'] = '3-14';
        (spec['fields'] as unknown[]).push({ name: 'PolicyHint', type: 'int32', versions: '14+', taggedVersions: '14+', tag: 7, about: 'An edit.' });
      }),
      KAFKA_VERSION,
    );
    const changed = [...edited.keys()].filter((name) => edited.get(name) !== original.get(name));
    assert.deepEqual(changed.sort(), ['api-table.ts', 'produce.ts']);
    const produce = edited.get('produce.ts')!;
    assert.match(produce, /\n {2}policyHint\?: number;\n/);
    assert.match(produce, /f\('policyHint', 'int32', '14\+', \{ tag: 7, tagged: '14\+' \}\)/);
    assert.match(produce, /message\('ProduceRequest', 0, '3-14', '9\+'/);
    assert.match(edited.get('api-table.ts')!, /api\(0, 'Produce', \['broker'\], '3-14', '9\+', false, '3-13', '9\+', false\)/);
  });

  it('fails on spec attributes and types it does not know, naming the file and field', () => {
    assert.throws(
      () => generateKafkaProtocol(withSpec('FetchRequest.json', (spec) => ((spec['fields'] as Record<string, unknown>[])[0]!['shiny'] = true)), KAFKA_VERSION),
      /FetchRequest\.json\.ClusterId: unknown attribute "shiny"/,
    );
    assert.throws(
      () => generateKafkaProtocol(withSpec('FetchRequest.json', (spec) => ((spec['fields'] as Record<string, unknown>[])[0]!['type'] = 'int128')), KAFKA_VERSION),
      /FetchRequest\.json\.ClusterId: unknown type int128/,
    );
    assert.throws(
      () => generateKafkaProtocol(withSpec('FetchRequest.json', (spec) => ((spec['fields'] as Record<string, unknown>[]).push({ name: 'X', type: '[]Nowhere', versions: '0+' }))), KAFKA_VERSION),
      /struct Nowhere is not defined in FetchRequest\.json/,
    );
  });

  it('reports changed, missing and extra files in a folder', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-gen-'));
    try {
      fs.writeFileSync(path.join(dir, 'a.ts'), 'same');
      fs.writeFileSync(path.join(dir, 'b.ts'), 'old');
      fs.writeFileSync(path.join(dir, 'stray.ts'), '');
      const files = new Map([['a.ts', 'same'], ['b.ts', 'new'], ['c.ts', 'x']]);
      assert.deepEqual(staleFiles(files, dir), ['b.ts (differs)', 'c.ts (missing)', 'stray.ts (not generated from the specs)']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps the generated output compact (well under 2 MiB)', () => {
    const bytes = fs.readdirSync(GENERATED_DIR).reduce((sum, name) => sum + fs.statSync(path.join(GENERATED_DIR, name)).size, 0);
    assert.ok(bytes < 1024 * 1024, `generated output is ${bytes} bytes`);
  });

  it('names files in kebab case and strips // comments outside strings only', () => {
    assert.equal(fileBaseName('ListOffsets'), 'list-offsets');
    assert.equal(fileBaseName('DescribeUserScramCredentials'), 'describe-user-scram-credentials');
    const text = '{ // comment\n  "about": "see https://kafka.apache.org // not a comment", "q": "a \\" // b" // end\n}';
    assert.deepEqual(JSON.parse(stripJsonComments(text)), { about: 'see https://kafka.apache.org // not a comment', q: 'a " // b' });
  });
});

describe('generated API table', () => {
  it('agrees with the hand table of api-keys.ts on names and request header versions of every live API', () => {
    for (const [apiKey, entry] of API_TABLE) {
      assert.equal(apiKeyName(apiKey), entry.name, `api key ${apiKey}`);
      const range = entry.request.validVersions;
      if (range === null) continue; // removed from Kafka 4: the hand table keeps older facts
      assert.equal(apiKeyInfo(apiKey)?.firstFlexibleVersion, entry.request.flexibleFrom, `${entry.name} first flexible version`);
      for (let version = range.min; version <= range.max; version++) {
        assert.equal(requestHeaderVersion(apiKey, version), requestHeaderVersionFor(apiKey, version), `${entry.name} v${version}`);
      }
    }
    for (let apiKey = 0; apiKey < 200; apiKey++) assert.equal(apiKeyInfo(apiKey) !== undefined, API_TABLE.has(apiKey), `api key ${apiKey}`);
  });

  it('derives header versions: v2/v1 requests by flexibility, v1/v0 responses, ApiVersions responses always v0', () => {
    assert.equal(requestHeaderVersionFor(0, 8), 1);
    assert.equal(requestHeaderVersionFor(0, 9), 2);
    assert.equal(responseHeaderVersionFor(0, 8), 0);
    assert.equal(responseHeaderVersionFor(0, 9), 1);
    assert.equal(requestHeaderVersionFor(18, 4), 2);
    assert.equal(responseHeaderVersionFor(18, 4), 0, 'ApiVersions responses keep header v0');
    assert.equal(requestHeaderVersionFor(17, 1), 1, 'SaslHandshake is never flexible');
    assert.equal(requestHeaderVersionFor(7, 0), 0, 'ControlledShutdown v0');
    assert.equal(requestHeaderVersionFor(9999, 0), undefined);
    assert.equal(API_TABLE.get(7)?.request.validVersions, null, 'ControlledShutdown was removed in Kafka 4');
  });
});
