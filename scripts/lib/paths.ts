/**
 * @module scripts/lib/paths
 * Where the provisioning cache keeps the real components. One place, so scripts, tests and the quickstart agree.
 */
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Git-ignored; everything provisioned lives below it. Overridable so CI can share a cache between checkouts. */
export const CACHE_DIR = process.env['TOLLGATE_CACHE_DIR'] ?? path.join(REPO_ROOT, '.cache');

export const ENVOY_VERSION = '1.40.0';
export const KAFKA_VERSION = '4.1.2';

export const ENVOY_BINARY = path.join(CACHE_DIR, 'envoy', ENVOY_VERSION, 'envoy');
/** Every jar the broker and its tools need, flat, for `java -cp "<dir>/*"`. */
export const KAFKA_LIBS_DIR = path.join(CACHE_DIR, 'kafka', KAFKA_VERSION, 'libs');

/** One folder per component version; a `.provisioned` marker inside says the folder is complete (see provision.ts). */
export const ENVOY_DIR = path.dirname(ENVOY_BINARY);
export const KAFKA_DIR = path.dirname(KAFKA_LIBS_DIR);
export const PROVISIONED_MARKER = '.provisioned';
/** The Maven dependency list that provision.ts resolves into KAFKA_LIBS_DIR. */
export const KAFKA_POM = path.join(REPO_ROOT, 'scripts', 'kafka', 'pom.xml');
/** log4j2 config for Kafka's command-line tools: warnings to stderr, so a tool's stdout carries only its output. */
export const KAFKA_TOOLS_LOG4J2 = path.join(REPO_ROOT, 'scripts', 'kafka', 'tools-log4j2.xml');
/** Per-run work folders and log files of brokers and proxies started by tests and the quickstart. */
export const RUN_DIR = path.join(CACHE_DIR, 'run');
