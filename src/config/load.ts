/**
 * @module config/load
 * Reads a YAML config file and validates it against the one schema. A bad file is reported as the file, the line,
 * the path inside the document and what was expected, so an operator can fix it without reading code.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument, isNode } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.ts';

export interface ConfigProblem {
  /** Path inside the document, rendered like `rules[2].effect` (empty for the document itself). */
  readonly path: string;
  readonly message: string;
  /** 1-based position of the offending node, when the YAML has one. */
  readonly line?: number;
  readonly column?: number;
}

export class ConfigError extends Error {
  readonly file: string;
  readonly problems: readonly ConfigProblem[];
  constructor(file: string, problems: readonly ConfigProblem[]) {
    super(`invalid config ${file}:\n${problems.map((p) => `  ${formatProblem(file, p)}`).join('\n')}`);
    this.name = 'ConfigError';
    this.file = file;
    this.problems = problems;
  }
}

function formatProblem(file: string, p: ConfigProblem): string {
  const where = p.line === undefined ? file : `${file}:${p.line}:${p.column ?? 1}`;
  return `${where}: ${p.path === '' ? '(document)' : p.path}: ${p.message}`;
}

export function renderPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    out += typeof key === 'number' ? `[${key}]` : `${out === '' ? '' : '.'}${String(key)}`;
  }
  return out;
}

/** Parses and validates config text; `file` only names the source in errors. */
export function parseConfig(text: string, file: string): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(file, doc.errors.map((e) => {
      const pos = lineCounter.linePos(e.pos[0]);
      return { path: '', message: `YAML: ${e.message.split('\n')[0]}`, line: pos.line, column: pos.col };
    }));
  }
  const raw: unknown = doc.toJS() ?? {};
  const result = configSchema.safeParse(raw, { reportInput: true });
  if (result.success) return resolveAuditPaths(result.data, path.dirname(path.resolve(file)));
  throw new ConfigError(file, result.error.issues.map((issue) => describeIssue(issue, doc, lineCounter)));
}

function describeIssue(issue: z.core.$ZodIssue, doc: ReturnType<typeof parseDocument>, lines: LineCounter): ConfigProblem {
  let path = issue.path;
  let message = issue.message;
  if (issue.input !== undefined && issue.code !== 'unrecognized_keys' && (typeof issue.input !== 'object' || issue.input === null)) {
    message += `, got ${JSON.stringify(issue.input)}`;
  }
  if (issue.code === 'unrecognized_keys') {
    message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')} (not in the schema)`;
    path = [...issue.path, issue.keys[0] ?? ''];
  }
  // Point at the deepest node that exists: a missing key has no node of its own, its parent does.
  for (let depth = path.length; depth >= 0; depth--) {
    const node = doc.getIn(path.slice(0, depth) as unknown[], true);
    if (isNode(node) && node.range) {
      const pos = lines.linePos(node.range[0]);
      return { path: renderPath(issue.code === 'unrecognized_keys' ? issue.path.concat(path.slice(-1)) : issue.path), message, line: pos.line, column: pos.col };
    }
  }
  return { path: renderPath(issue.path), message };
}

/**
 * Paths under `audit` are relative to the config file's folder, so where the audit trail is written does not
 * depend on the directory tollgate was started from. (Secret files elsewhere are read as given.)
 */
export function resolveAuditPaths(config: Config, baseDir: string): Config {
  const at = (p: string) => path.resolve(baseDir, p);
  const sinks = config.audit.sinks.map((sink) => {
    switch (sink.type) {
      case 'stdout': return sink;
      case 'file': {
        const file = at(sink.path);
        return { ...sink, path: file, spool: { ...sink.spool, dir: at(sink.spool.dir ?? `${sink.path}.spool`) } };
      }
      case 'kafka': {
        const tls = sink.tls === undefined ? undefined : {
          ...sink.tls,
          ...(sink.tls.caFile !== undefined && { caFile: at(sink.tls.caFile) }),
          ...(sink.tls.certFile !== undefined && { certFile: at(sink.tls.certFile) }),
          ...(sink.tls.keyFile !== undefined && { keyFile: at(sink.tls.keyFile) }),
        };
        return { ...sink, ...(tls !== undefined && { tls }), spool: { ...sink.spool, dir: at(sink.spool.dir!) } };
      }
      case 'webhook': return { ...sink, spool: { ...sink.spool, dir: at(sink.spool.dir!) } };
    }
  });
  return { ...config, audit: { ...config.audit, sinks } };
}

export function loadConfigFile(file: string): Config {
  return loadConfigFileWithHash(file).config;
}

/** Names a config's text in metrics and logs: sha256, first 12 hex digits. */
export function configHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}

/** `loadConfigFile`, plus the hash of the text it validated (what reload compares and reports). */
export function loadConfigFileWithHash(file: string): { config: Config; hash: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [{ path: '', message: `cannot read the file: ${(err as Error).message}` }]);
  }
  return { config: parseConfig(text, file), hash: configHash(text) };
}
