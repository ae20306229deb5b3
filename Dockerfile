# Two images from one file:
#
# - runtime: the daemon for container-based hypervisor deployments. It talks to the host's
#   system bus, lvmlockd and device-mapper, and installs the qemu hook into the host's hook
#   directory when it starts (see packaging/container/entrypoint.sh and the README):
#     docker build --target runtime -t virt-lvmlockd:runtime .
#   BASE_IMAGE is any Debian 12 (bookworm) image; scripts/test-image.sh makes one locally with
#   mmdebstrap and passes it as --build-arg BASE_IMAGE=localhost/debian:bookworm.
#
# - test (the default, last stage): builds virt-lvmlockd and runs its test suite: unit tests plus
#   the integration tests against a real private dbus-daemon, the real libvirt-dbus (Test driver)
#   and the LVM simulator.
#     docker build -t virt-lvmlockd .
#     docker run --rm virt-lvmlockd
ARG BASE_IMAGE=debian:bookworm

# Compiles the daemon with Debian's own Node.js and npm, so that no image but BASE_IMAGE is
# needed, and keeps only what runs: the .js of the sources and the production dependencies.
FROM ${BASE_IMAGE} AS runtime-build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src/virt-lvmlockd
# A CA file npm must trust on top of its own (a TLS-intercepting proxy's), mounted into the build
# by the builder (podman build -v); empty: none.
ARG EXTRA_CA_CERTS=
COPY package.json package-lock.json ./
RUN if [ -n "$EXTRA_CA_CERTS" ]; then export NODE_EXTRA_CA_CERTS="$EXTRA_CA_CERTS"; fi; \
    npm ci --no-audit --no-fund --loglevel=error
COPY tsconfig.json ./
COPY src ./src
COPY scripts ./scripts
COPY test ./test
RUN npx tsc -p tsconfig.json
# The same layout as the Debian package: /usr/lib/virt-lvmlockd/{dist/src,node_modules,hooks}.
RUN set -e; lib=/out/usr/lib/virt-lvmlockd; mkdir -p "$lib"; \
    if [ -n "$EXTRA_CA_CERTS" ]; then export NODE_EXTRA_CA_CERTS="$EXTRA_CA_CERTS"; fi; \
    (cd src && find . -name '*.ts' -printf '%P\n') | while read -r ts; do \
      install -D -m 644 "dist/src/${ts%.ts}.js" "$lib/dist/src/${ts%.ts}.js"; \
    done; \
    node -e 'const p = require("./package.json"); \
      const keep = { name: p.name, version: p.version, license: p.license, type: p.type, \
                     engines: p.engines, dependencies: p.dependencies }; \
      process.stdout.write(JSON.stringify(keep, null, 2) + "\n");' > "$lib/package.json"; \
    cp package-lock.json "$lib/"; \
    (cd "$lib" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error); \
    rm -rf "$lib/package-lock.json" "$lib/node_modules/.package-lock.json" "$lib/node_modules/.bin"; \
    install -D -m 755 src/hook/qemu "$lib/hooks/qemu"

FROM ${BASE_IMAGE} AS runtime
# lvm2 for lvm, lvm2-lockd for lvmlockctl; the lvmlockd daemon itself runs on the host.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs lvm2 lvm2-lockd \
 && rm -rf /var/lib/apt/lists/*
COPY --from=runtime-build /out/ /
COPY systemd/org.virtlvmlockd.conf /usr/share/dbus-1/system.d/org.virtlvmlockd.conf
COPY config/virt-lvmlockd.yaml /usr/share/virt-lvmlockd/config.yaml
COPY packaging/container/entrypoint.sh /usr/lib/virt-lvmlockd/container-entrypoint
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Locks belong to the guests, not to this process: SIGTERM stops the daemon and releases nothing.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/lib/virt-lvmlockd/container-entrypoint"]
CMD ["--config", "/etc/virt-lvmlockd/config.yaml"]

FROM node:20-bookworm AS test

# The same Debian packages scripts/ensure-deps.sh installs on a bare host.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      dbus-daemon dbus-bin libvirt-dbus \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src/virt-lvmlockd
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npx tsc -p tsconfig.json

ENV PATH=$PATH:/usr/sbin:/sbin
CMD ["npm", "test"]
