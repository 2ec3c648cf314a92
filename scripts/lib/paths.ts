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
/** kube-apiserver and kubectl, built from k8s.io/kubernetes at this tag by scripts/kube/go.mod. */
export const KUBERNETES_VERSION = '1.36.3';
/** The upstream version of Debian's `etcd-server` package (bookworm); provisioning refuses any other. */
export const ETCD_VERSION = '3.4.23';
/**
 * The major version of Debian's PostgreSQL (bookworm: 15). Minor releases arrive as security updates and the
 * repositories keep only the newest, so the major version is what is pinned; an installed server stands in for the
 * unpacked one only if it is this major version.
 */
export const POSTGRES_MAJOR = '15';

export const ENVOY_BINARY = path.join(CACHE_DIR, 'envoy', ENVOY_VERSION, 'envoy');
/** Every jar the broker and its tools need, flat, for `java -cp "<dir>/*"`. */
export const KAFKA_LIBS_DIR = path.join(CACHE_DIR, 'kafka', KAFKA_VERSION, 'libs');

export const KUBE_APISERVER_BINARY = path.join(CACHE_DIR, 'kubernetes', KUBERNETES_VERSION, 'kube-apiserver');
export const KUBECTL_BINARY = path.join(CACHE_DIR, 'kubernetes', KUBERNETES_VERSION, 'kubectl');
export const ETCD_BINARY = path.join(CACHE_DIR, 'etcd', ETCD_VERSION, 'etcd');

/** One folder per component version; a `.provisioned` marker inside says the folder is complete (see provision.ts). */
export const ENVOY_DIR = path.dirname(ENVOY_BINARY);
export const KAFKA_DIR = path.dirname(KAFKA_LIBS_DIR);
export const KUBERNETES_DIR = path.dirname(KUBE_APISERVER_BINARY);
export const ETCD_DIR = path.dirname(ETCD_BINARY);
/** Debian's postgresql-<major> and its client, unpacked (layout.json inside says where the programs are). */
export const POSTGRES_DIR = path.join(CACHE_DIR, 'postgresql', POSTGRES_MAJOR);
/** Debian's chromium, unpacked, for the approver page's browser tests (layout.json inside names the executable). */
export const CHROMIUM_DIR = path.join(CACHE_DIR, 'chromium');
export const PROVISIONED_MARKER = '.provisioned';
/** The Maven dependency list that provision.ts resolves into KAFKA_LIBS_DIR. */
export const KAFKA_POM = path.join(REPO_ROOT, 'scripts', 'kafka', 'pom.xml');
/** The Go module (go.mod, go.sum, two main packages) that provision.ts builds kube-apiserver and kubectl from. */
export const KUBE_MODULE_DIR = path.join(REPO_ROOT, 'scripts', 'kube');
/**
 * Go's module download cache, build cache and GOPATH for that build: inside the cache, so a build never writes to
 * $HOME and deleting the cache deletes everything it fetched.
 */
export const GO_DIR = path.join(CACHE_DIR, 'go');
/** log4j2 config for Kafka's command-line tools: warnings to stderr, so a tool's stdout carries only its output. */
export const KAFKA_TOOLS_LOG4J2 = path.join(REPO_ROOT, 'scripts', 'kafka', 'tools-log4j2.xml');
/** Per-run work folders and log files of brokers and proxies started by tests and the quickstart. */
export const RUN_DIR = path.join(CACHE_DIR, 'run');
