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
