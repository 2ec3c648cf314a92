/**
 * @module scripts/lib/kafka-specs
 * Kafka's own message specs (`common/message/*.json`, JSON with `//` comments) read straight out of the
 * kafka-clients jar in KAFKA_LIBS_DIR, for scripts/generate-kafka-protocol.ts.
 *
 * A jar is a zip file. We need only its central directory and stored or deflated entries, so this module carries a
 * tiny reader for exactly that (zip64 and encryption are refused with a clear error; Kafka's jars use neither)
 * instead of shelling out to `unzip`, which may not be installed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { KAFKA_LIBS_DIR, KAFKA_VERSION } from './paths.ts';

/** The jar holding `common/message/*.json`. */
export const KAFKA_CLIENTS_JAR = path.join(KAFKA_LIBS_DIR, `kafka-clients-${KAFKA_VERSION}.jar`);

const EOCD_SIGNATURE = 0x06054b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
/** End-of-central-directory record without its trailing comment. */
const EOCD_BYTES = 22;
const METHOD_STORED = 0;
const METHOD_DEFLATED = 8;

/**
 * Every entry of the zip file `zip` whose name `wanted` accepts, as name → bytes. Throws on anything this small
 * reader does not handle instead of returning wrong bytes.
 */
export function readZipEntries(zip: Buffer, wanted: (name: string) => boolean): Map<string, Buffer> {
  // The end-of-central-directory record sits in the last 22 + (up to 65535 comment) bytes.
  let eocd = -1;
  for (let i = zip.length - EOCD_BYTES; i >= Math.max(0, zip.length - EOCD_BYTES - 0xffff); i--) {
    if (zip.readUInt32LE(i) === EOCD_SIGNATURE) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('zip: end of central directory not found (not a zip file?)');
  const entries = zip.readUInt16LE(eocd + 10);
  const directoryOffset = zip.readUInt32LE(eocd + 16);
  if (entries === 0xffff || directoryOffset === 0xffffffff) throw new Error('zip: zip64 archives are not supported');

  const out = new Map<string, Buffer>();
  let at = directoryOffset;
  for (let n = 0; n < entries; n++) {
    if (zip.readUInt32LE(at) !== CENTRAL_SIGNATURE) throw new Error(`zip: bad central directory entry at offset ${at}`);
    const flags = zip.readUInt16LE(at + 8);
    const method = zip.readUInt16LE(at + 10);
    const compressedSize = zip.readUInt32LE(at + 20);
    const size = zip.readUInt32LE(at + 24);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const localOffset = zip.readUInt32LE(at + 42);
    const name = zip.toString('utf8', at + 46, at + 46 + nameLength);
    at += 46 + nameLength + extraLength + commentLength;
    if (!wanted(name)) continue;

    if ((flags & 1) !== 0) throw new Error(`zip: ${name} is encrypted`);
    if (zip.readUInt32LE(localOffset) !== LOCAL_SIGNATURE) throw new Error(`zip: bad local header for ${name}`);
    // The local header repeats name and extra field, possibly with a different extra length.
    const dataStart = localOffset + 30 + zip.readUInt16LE(localOffset + 26) + zip.readUInt16LE(localOffset + 28);
    const data = zip.subarray(dataStart, dataStart + compressedSize);
    let bytes: Buffer;
    if (method === METHOD_STORED) bytes = Buffer.from(data);
    else if (method === METHOD_DEFLATED) bytes = inflateRawSync(data);
    else throw new Error(`zip: ${name} uses compression method ${method}; only stored and deflated are supported`);
    if (bytes.length !== size) throw new Error(`zip: ${name} inflated to ${bytes.length} bytes, the directory says ${size}`);
    out.set(name, bytes);
  }
  return out;
}

/**
 * Kafka's spec files are JSON plus `//` line comments. Removes the comments, leaving `//` inside strings alone
 * (an `about` text may hold a URL), and keeps line breaks so JSON.parse errors still point at the right line.
 */
export function stripJsonComments(text: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      out += c;
      if (c === '\\') out += text[++i] ?? '';
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i + 1 < text.length && text[i + 1] !== '\n') i++;
    } else {
      out += c;
    }
  }
  return out;
}

/** One spec file: its name in the jar (`ProduceRequest.json`) and its parsed content. */
export interface SpecFile {
  readonly fileName: string;
  readonly spec: unknown;
}

/**
 * Every request and response spec (`*Request.json`, `*Response.json`, the two header specs among them) in the jar, sorted by file name.
 * Other specs in that folder (records of the metadata log, consumer protocol payloads) are left out.
 */
export function readKafkaMessageSpecs(jar: string = KAFKA_CLIENTS_JAR): SpecFile[] {
  if (!fs.existsSync(jar)) throw new Error(`${jar} not found: run node scripts/provision.ts kafka`);
  const entries = readZipEntries(fs.readFileSync(jar), (name) =>
    /^common\/message\/([A-Za-z0-9]+(Request|Response)|RequestHeader|ResponseHeader)\.json$/.test(name),
  );
  return [...entries]
    .map(([name, bytes]) => {
      const fileName = name.slice('common/message/'.length);
      try {
        return { fileName, spec: JSON.parse(stripJsonComments(bytes.toString('utf8'))) as unknown };
      } catch (err) {
        throw new Error(`${name} in ${jar}: ${(err as Error).message}`, { cause: err });
      }
    })
    .sort((a, b) => (a.fileName < b.fileName ? -1 : a.fileName > b.fileName ? 1 : 0));
}
