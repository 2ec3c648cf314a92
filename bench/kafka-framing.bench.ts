/**
 * Kafka frame reassembly throughput: 200 MiB of 1 KiB frames and of 1 MiB frames, delivered in 64 KiB chunks (about
 * what Envoy's network ext_proc hands over), through `FrameReassembler.push`. Printed against a baseline measured
 * in the same run on the same chunks: concatenating all of them (what `Buffer.concat` does, into a destination
 * allocated once outside the timing so page faults do not dominate), i.e. copying every byte once. A ratio near or
 * above 1 means reassembly costs no more than one copy of the data; frames inside one chunk are views, not copies,
 * so small frames run well above 1.
 *
 *   node bench/kafka-framing.bench.ts [--mib 200] [--seconds 3]
 *
 * Each case repeats until `--seconds` have passed (at least once) and reports the best run. No assertions.
 */
import { parseArgs } from 'node:util';
import { FrameReassembler } from '../src/kafka/protocol/framing.ts';

const { values } = parseArgs({
  options: { mib: { type: 'string', default: '200' }, seconds: { type: 'string', default: '3' } },
});
const MiB = 1024 * 1024;
const TOTAL_BYTES = Number(values.mib) * MiB;
const BUDGET_MS = Number(values.seconds) * 1000;
const CHUNK_BYTES = 64 * 1024;

/** A stream of frames of `bodyBytes` each (plus the 4-byte prefix), about `totalBytes` long, cut into chunks. */
function chunkedStream(bodyBytes: number, totalBytes: number): Buffer[] {
  const frameBytes = bodyBytes + 4;
  const count = Math.max(1, Math.floor(totalBytes / frameBytes));
  const stream = Buffer.allocUnsafe(count * frameBytes);
  for (let i = 0; i < count; i++) {
    const offset = i * frameBytes;
    stream.writeInt32BE(bodyBytes, offset);
    stream.fill(i & 0xff, offset + 4, offset + frameBytes);
  }
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < stream.length; offset += CHUNK_BYTES) {
    chunks.push(stream.subarray(offset, offset + CHUNK_BYTES));
  }
  return chunks;
}

/** Runs `fn` repeatedly within the time budget; returns the best MB/s (MB = 10^6 bytes). */
function measure(bytes: number, fn: () => void): { mbPerSecond: number; runs: number } {
  fn(); // warm-up
  let best = Infinity;
  let runs = 0;
  const deadline = performance.now() + BUDGET_MS;
  do {
    const start = performance.now();
    fn();
    best = Math.min(best, performance.now() - start);
    runs++;
  } while (performance.now() < deadline);
  return { mbPerSecond: bytes / 1e6 / (best / 1000), runs };
}

let sink = 0;
for (const bodyBytes of [1024, MiB]) {
  const chunks = chunkedStream(bodyBytes, TOTAL_BYTES);
  const bytes = chunks.reduce((sum, chunk) => sum + chunk.length, 0);

  const destination = Buffer.alloc(bytes);
  const baseline = measure(bytes, () => {
    let offset = 0;
    for (const chunk of chunks) offset += chunk.copy(destination, offset);
    sink += offset;
  });
  const reassembly = measure(bytes, () => {
    const reassembler = new FrameReassembler({ maxFrameBytes: 100 * MiB });
    let frames = 0;
    for (const chunk of chunks) frames += reassembler.push(chunk).length;
    if (!reassembler.isIdle) throw new Error('stream did not end on a frame boundary');
    sink += frames;
  });

  const label = bodyBytes === MiB ? '1 MiB' : '1 KiB';
  console.log(
    `${label} frames, ${(bytes / MiB).toFixed(0)} MiB in ${chunks.length} chunks of 64 KiB: ` +
      `reassembly ${reassembly.mbPerSecond.toFixed(0)} MB/s (${reassembly.runs} runs), ` +
      `baseline concat ${baseline.mbPerSecond.toFixed(0)} MB/s (${baseline.runs} runs), ` +
      `ratio ${(reassembly.mbPerSecond / baseline.mbPerSecond).toFixed(2)}`,
  );
}
if (sink === -1) console.log('unreachable');
