# Builds virt-lvmlockd and runs its test suite: unit tests plus the integration tests against a
# real private dbus-daemon, the real libvirt-dbus (Test driver) and the LVM simulator.
#   docker build -t virt-lvmlockd .
#   docker run --rm virt-lvmlockd
FROM node:20-bookworm

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
