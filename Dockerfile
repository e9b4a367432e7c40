# cardhold: one image for every role (vault, api, acquirer, migrations and the CLI).
# Build:  podman build -t registry.example.com/cardhold:0.1.0 .      (or docker build)
# Run:    … registry.example.com/cardhold:0.1.0 vault                 (api | acquirer | migrate | …)
# Both bases are build arguments, pinned by digest, so that an organisation can substitute the copies in
# its own registry (PCI container guidance 12.2) and a machine without registries can substitute local
# ones (deploy/local-base/build.sh; docs/deployment.md). Digests: the multi-architecture indexes of
# node:24-bookworm-slim and gcr.io/distroless/nodejs24-debian12:nonroot; refresh them together.
ARG BUILDER_IMAGE=docker.io/library/node:24-bookworm-slim@sha256:3638d9a6fe4030bd716be989438248074489337ba3275657f93595428be4fc03
ARG RUNTIME_BASE=gcr.io/distroless/nodejs24-debian12:nonroot@sha256:14d42e2511532589a7c7e01a753667a74fcc96266e137e8125006b87b0c32d0a
# Which stage supplies /app: `build` (compile here), or `prebuilt` (deploy/image/assemble.sh already ran
# on a Debian 12 + Node 24 host into .image-app/; only where the builder image cannot be pulled).
ARG APP_SOURCE=build

# Build stage: compiles TypeScript and prunes development dependencies (deploy/image/assemble.sh).
# pkcs11js is a native addon: node-gyp needs a compiler, make and Python here, and nothing of them
# reaches the runtime image.
FROM ${BUILDER_IMAGE} AS build
# cardhold:waive docker.package-pinning=build stage only: the toolchain compiles pkcs11js and never reaches the runtime image, the builder base itself is pinned by digest, which fixes the Debian snapshot these packages come from
RUN apt-get update && apt-get install -y --no-install-recommends g++ make python3 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY deploy/image ./deploy/image
RUN sh deploy/image/assemble.sh /src /out/app

# Where a builder image cannot be pulled: the output of the same script, run on the host.
FROM scratch AS prebuilt
COPY .image-app /out/app

FROM ${APP_SOURCE} AS app

# Runtime: distroless Node.js 24: no shell, no package manager; non-root uid 65532.
FROM ${RUNTIME_BASE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="cardhold" \
      org.opencontainers.image.description="Card-data vault and payments platform (PCI DSS v4.0.1): vault, api, test acquirer" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/cardhold/cardhold" \
      org.opencontainers.image.documentation="https://github.com/cardhold/cardhold/blob/main/docs/deployment.md" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.vendor="cardhold"
# Root owns the application files and they are not writable: the process (65532) cannot change its code.
COPY --from=app --chown=0:0 --chmod=0555 /out/app /app
WORKDIR /app
# In containers: listen on every interface; the only writable place is the data directory, a tmpfs
# (control sockets of local-sealed, development state). Secrets come as files (<VARIABLE>_FILE), never
# as ENV here.
ENV NODE_ENV=production \
    CARDHOLD_HOST=0.0.0.0 \
    CARDHOLD_DATA_DIR=/var/lib/cardhold
USER 65532:65532
EXPOSE 8443 8444 8445 9464 9465 9466
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/nodejs/bin/node", "/app/healthcheck.js"]
ENTRYPOINT ["/nodejs/bin/node", "/app/src/cli/main.js"]
CMD ["--help"]
