# tollgate's container image: Node 24 runs the TypeScript sources directly (type stripping), so the image is the
# sources plus production dependencies, nothing compiled.
#
#   docker build -t tollgate:0.1.0 .
#   docker run --read-only -v "$PWD/my-config.yaml:/etc/tollgate/tollgate.yaml:ro" tollgate:0.1.0
#
# The config must put the admin listener where the health check reaches it (server.admin.address 0.0.0.0:9901 or
# 127.0.0.1:9901); the manifests in k8s/ do. Nothing is written at run time (logs and audit go to stdout), so a
# read-only root filesystem works as is.
FROM node:24-slim

ENV NODE_ENV=production
WORKDIR /app

# Dependencies first, so a source change does not reinstall them. No install scripts: none of the production
# dependencies needs one.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

COPY bin/ ./bin/
COPY proto/ ./proto/
COPY src/ ./src/

# The `node` user of the base image, by number so Kubernetes' runAsNonRoot can check it.
USER 1000:1000

# gRPC for Envoy (ext_authz, ext_proc, network ext_proc), admin (/healthz, /readyz, /metrics).
EXPOSE 9001 9901

HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9901/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# The same command as `npm run tollgate -- serve --config FILE` (package.json scripts.tollgate).
ENTRYPOINT ["node", "src/cli.ts"]
CMD ["serve", "--config", "/etc/tollgate/tollgate.yaml"]
