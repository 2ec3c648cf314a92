/**
 * @module admin/grpc-health
 * grpc.health.v1.Health, so Envoy's gRPC health checks (and grpc_health_probe in Kubernetes) see tollgate stop
 * serving as soon as it starts draining.
 */
import * as grpc from '@grpc/grpc-js';

type ServingStatus = 'SERVING' | 'NOT_SERVING';

/** The service names tollgate answers for; '' is the whole server. */
export const HEALTH_SERVICE_NAMES = [
  '',
  'envoy.service.auth.v3.Authorization',
  'envoy.service.ext_proc.v3.ExternalProcessor',
  'envoy.service.network_ext_proc.v3.NetworkExternalProcessor',
] as const;

interface HealthRequest { service?: string }
interface HealthResponse { status: ServingStatus | 'SERVICE_UNKNOWN' }

export function createHealthService() {
  let status: ServingStatus = 'SERVING';
  const watchers = new Set<grpc.ServerWritableStream<HealthRequest, HealthResponse>>();
  const known = (name: string | undefined) => (HEALTH_SERVICE_NAMES as readonly string[]).includes(name ?? '');
  return {
    setServing(serving: boolean) {
      status = serving ? 'SERVING' : 'NOT_SERVING';
      for (const w of watchers) if (known(w.request.service)) w.write({ status });
      if (!serving) for (const w of watchers) w.end();
    },
    implementation: {
      Check(call: grpc.ServerUnaryCall<HealthRequest, HealthResponse>, cb: grpc.sendUnaryData<HealthResponse>) {
        if (!known(call.request.service)) {
          cb({ code: grpc.status.NOT_FOUND, details: `unknown service "${call.request.service}"` });
          return;
        }
        cb(null, { status });
      },
      Watch(call: grpc.ServerWritableStream<HealthRequest, HealthResponse>) {
        call.write({ status: known(call.request.service) ? status : 'SERVICE_UNKNOWN' });
        watchers.add(call);
        const forget = () => watchers.delete(call);
        call.on('cancelled', forget);
        call.on('close', forget);
      },
    },
  };
}
