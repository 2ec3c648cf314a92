/**
 * @module bench/lib/passthrough-processor
 * A network ext_proc server that does nothing: every message's bytes go back unchanged in the direction they came
 * from, one reply per direction a message carries, `end_of_stream` echoed, and the stream ended when Envoy ends it.
 * No framing, no parsing, no state. Behind Envoy it is the ceiling of the "Envoy + network ext_proc + a Node gRPC
 * server" architecture that tollgate's Kafka listener is measured against (bench/kafka-throughput.bench.ts).
 *
 * It serves the same service definition and the same grpc-js server options as `tollgate serve` (src/server.ts), so
 * the only difference left is what the handler does with the bytes.
 *
 * Bench use only. As its own process (one event loop of its own, like tollgate's):
 *   node bench/lib/passthrough-processor.ts [--port 0]      prints "passthrough processor listening on 127.0.0.1:<port>"
 */
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { networkExternalProcessorService } from '../../src/grpc/protos.ts';
import type { NetworkProcessingRequest, NetworkProcessingResponse, Encodable } from '../../src/grpc/protos.ts';

export interface PassthroughProcessor {
  readonly port: number;
  /** Messages answered so far (both directions). */
  messages(): number;
  close(): Promise<void>;
}

type ProcessCall = grpc.ServerDuplexStream<NetworkProcessingRequest, Encodable<NetworkProcessingResponse>>;

/** Listen on 127.0.0.1:`port` (0: any free port). */
export async function startPassthroughProcessor(port = 0): Promise<PassthroughProcessor> {
  let answered = 0;
  const server = new grpc.Server({
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.max_send_message_length': -1,
    'grpc.keepalive_permit_without_calls': 1,
  });
  server.addService(networkExternalProcessorService, {
    Process: (call: ProcessCall) => {
      call.on('data', (message: NetworkProcessingRequest) => {
        if (message.read_data !== null) {
          call.write({ read_data: { data: message.read_data.data, end_of_stream: message.read_data.end_of_stream } });
          answered++;
        }
        if (message.write_data !== null) {
          call.write({ write_data: { data: message.write_data.data, end_of_stream: message.write_data.end_of_stream } });
          answered++;
        }
      });
      call.on('end', () => call.end());
      // A cancelled stream (the connection went away) needs nothing from us.
      call.on('error', () => {});
    },
  });
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return {
    port: bound,
    messages: () => answered,
    close: () => new Promise<void>((resolve) => {
      server.tryShutdown(() => resolve());
      // Streams Envoy keeps open would hold tryShutdown forever.
      setTimeout(() => server.forceShutdown(), 2_000).unref();
    }),
  };
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });
  const processor = await startPassthroughProcessor(Number(values.port));
  console.log(`passthrough processor listening on 127.0.0.1:${processor.port}`);
  const shutdown = (): void => {
    console.log(`passthrough processor answered ${processor.messages()} messages; stopping`);
    void processor.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}
