import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonPatchValues, parseRequestBody } from '../../src/http/request-body.ts';

const body = (s: string) => Buffer.from(s);

test('JSON and the JSON patch flavours Kubernetes accepts are read as JSON', () => {
  for (const type of ['application/json', 'application/json; charset=utf-8', 'application/merge-patch+json', 'application/strategic-merge-patch+json', undefined]) {
    assert.deepEqual(parseRequestBody(type, body('{"a":{"b":1}}')), { ok: true, doc: { a: { b: 1 } } }, String(type));
  }
});

test('server-side apply YAML is read as the object it describes', () => {
  const yaml = 'apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - name: x\n      securityContext:\n        privileged: true\n';
  const parsed = parseRequestBody('application/apply-patch+yaml', body(yaml));
  assert.equal(parsed.ok, true);
  assert.deepEqual((parsed as any).doc.spec.containers[0].securityContext, { privileged: true });
});

test('a JSON Patch reads as the values it would write', () => {
  const patch = [
    { op: 'add', path: '/spec/containers/0/securityContext/privileged', value: true },
    { op: 'replace', path: '/metadata/labels/app~1name', value: 'web' },
    { op: 'remove', path: '/spec/volumes/0' },
    { op: 'add', path: '/spec/volumes/-', value: { name: 'h', hostPath: { path: '/' } } },
  ];
  assert.deepEqual(jsonPatchValues(patch), {
    spec: { containers: [{ securityContext: { privileged: true } }], volumes: [{ name: 'h', hostPath: { path: '/' } }] },
    metadata: { labels: { 'app/name': 'web' } },
  });
  assert.deepEqual(parseRequestBody('application/json-patch+json', body(JSON.stringify(patch))).ok, true);
});

test('what cannot be read says why', () => {
  const cases: Array<[string | undefined, Buffer, RegExp]> = [
    ['application/json', body('{"a":'), /does not parse/],
    ['application/vnd.kubernetes.protobuf', body('k8s\u0000'), /cannot be inspected/],
    ['application/json', Buffer.from([0xff, 0xfe]), /not UTF-8/],
    ['application/json-patch+json', body('{"op":"add"}'), /expected a JSON Patch array/],
    ['application/json-patch+json', body('[{"op":"add","path":"no-slash","value":1}]'), /expected a JSON pointer/],
  ];
  for (const [type, bytes, reason] of cases) {
    const parsed = parseRequestBody(type, bytes);
    assert.equal(parsed.ok, false);
    assert.match((parsed as { reason: string }).reason, reason);
  }
});
