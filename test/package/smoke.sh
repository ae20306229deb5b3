#!/bin/sh
# Smoke checks of the installed Debian package, run as root inside a fresh Debian system right
# after `apt-get install ./virt-lvmlockd_*.deb`: the programs start on the system's Node.js,
# every module loads, failures are the clear ones, the hook fails closed without the daemon,
# and remove and purge leave what they should.
#   sh smoke.sh VERSION
# Ends with "smoke: N passed, N failed"; exit status 1 if any check failed.
set -u
want_version=${1:?usage: smoke.sh VERSION}
passed=0 failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { passed=$((passed + 1)); echo "ok - $1"; }
fail() { failed=$((failed + 1)); echo "FAILED - $1"; [ -s "$tmp/out" ] && sed 's/^/    /' "$tmp/out" | head -n 20; }
# check NAME EXPECTED_STATUS PATTERN CMD...: runs CMD (bounded), wants that exit status and
# output (stdout and stderr) matching the extended regular expression PATTERN ("" for any).
check() {
  name=$1 want=$2 pattern=$3
  shift 3
  timeout -k 5 60 "$@" > "$tmp/out" 2>&1
  status=$?
  if [ "$status" -ne "$want" ]; then
    fail "$name (exit $status, wanted $want)"
  elif [ -n "$pattern" ] && ! grep -Eq -- "$pattern" "$tmp/out"; then
    fail "$name (output does not match /$pattern/)"
  elif grep -Eq 'SyntaxError|ERR_MODULE_NOT_FOUND|ERR_REQUIRE_ESM|is not a function|is not defined' "$tmp/out"; then
    fail "$name (a load error)"
  else
    ok "$name"
  fi
}

echo "# $(. /etc/os-release && echo "$PRETTY_NAME"), Node.js $(node --version), virt-lvmlockd $(dpkg-query -W -f '${Version}' virt-lvmlockd)"

check "virt-lvmlockd --version prints $want_version" 0 "^$want_version\$" virt-lvmlockd --version
check "virt-lvmlockd --help prints the usage" 0 '^usage: virt-lvmlockd' virt-lvmlockd --help
check "virt-lvmlockd refuses an unknown argument" 2 'unknown argument --bogus' virt-lvmlockd --bogus
check "virt-lvmlockctl version prints $want_version" 0 "^$want_version\$" virt-lvmlockctl version
check "virt-lvmlockctl --help prints the usage" 0 '^usage: virt-lvmlockctl' virt-lvmlockctl --help
check "virt-lvmlockctl without a command prints the usage, exit 2" 2 '^usage: virt-lvmlockctl' virt-lvmlockctl
check "virt-lvmlockctl status without the daemon's bus fails naming it" 1 '^virt-lvmlockctl: .*(/nonexistent/bus|ENOENT)' \
  env VIRT_LVMLOCKD_BUS_ADDRESS=unix:path=/nonexistent/bus virt-lvmlockctl status

# The installed configuration is valid: the daemon loads it, and fails only at the bus.
sed 's|^  address: system$|  address: unix:path=/nonexistent/bus|' /etc/virt-lvmlockd/config.yaml > "$tmp/config.yaml"
check "the daemon with the installed config fails at the missing bus, naming it" 1 'startup failed: cannot connect to D-Bus at unix:path=/nonexistent/bus' \
  virt-lvmlockd --config "$tmp/config.yaml"
printf 'lvm:\n  timeout: 30\n' > "$tmp/bad.yaml"
check "the daemon refuses an invalid config, naming the key" 2 'lvm.timeout' virt-lvmlockd --config "$tmp/bad.yaml"

# Every module of the daemon, loaded on this Node.js (the entry points run above; the XML
# worker refuses to run outside a worker thread, which is what it should say here).
cat > "$tmp/load-all.mjs" <<'JS'
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
const root = '/usr/lib/virt-lvmlockd/dist/src';
const skip = new Set(['main.js', 'cli/main.js', 'domain/parse-worker.js']);
let n = 0;
for (const rel of readdirSync(root, { recursive: true })) {
  if (!rel.endsWith('.js') || skip.has(rel)) continue;
  await import(join(root, rel));
  n++;
}
await import(join(root, 'domain/parse-worker.js')).then(
  () => { throw new Error('parse-worker.js loaded outside a worker thread'); },
  (err) => { if (!/only as a worker thread/.test(err.message)) throw err; },
);
console.log(`loaded ${n + 1} modules`);
JS
check "every module loads" 0 '^loaded [0-9]+ modules$' node "$tmp/load-all.mjs"

hook=/etc/libvirt/hooks/qemu.d/virt-lvmlockd
if [ -x "$hook" ] && [ "$(readlink -f "$hook")" = /usr/lib/virt-lvmlockd/hooks/qemu ]; then ok "the qemu hook is installed and executable"; else fail "the qemu hook is installed and executable"; fi
check "the hook refuses prepare without the daemon (fail closed)" 1 '^virt-lvmlockd: .*fail closed' \
  sh -c "echo '<domain type=\"kvm\"><name>vm1</name></domain>' | $hook vm1 prepare begin -"
check "the hook lets stopped through without the daemon" 0 '' sh -c "$hook vm1 stopped end - </dev/null"
for f in /usr/lib/systemd/system/virt-lvmlockd.service /usr/share/dbus-1/system.d/org.virtlvmlockd.conf \
  /usr/share/man/man8/virt-lvmlockd.8.gz /usr/share/man/man8/virt-lvmlockctl.8.gz /usr/share/man/man5/virt-lvmlockd.yaml.5.gz \
  /usr/share/bash-completion/completions/virt-lvmlockctl /usr/share/bash-completion/completions/virt-lvmlockd; do
  if [ -s "$f" ]; then ok "$f is installed"; else fail "$f is installed"; fi
done
unit_node=$(sed -n 's|^ExecStart=\(/usr/bin/node\) .* \(/usr/lib/virt-lvmlockd/dist/src/main.js\) .*|\1 \2|p' /usr/lib/systemd/system/virt-lvmlockd.service)
if [ -n "$unit_node" ] && [ -x /usr/bin/node ] && [ -f /usr/lib/virt-lvmlockd/dist/src/main.js ]; then ok "the unit's ExecStart names the installed node and daemon"; else fail "the unit's ExecStart names the installed node and daemon"; fi
# The node options of the unit are accepted by this Node.js.
check "this Node.js takes the unit's node options" 0 '^ok$' node --max-semi-space-size=1 -e 'console.log("ok")'

export DEBIAN_FRONTEND=noninteractive
check "apt-get remove succeeds" 0 '' apt-get remove -y -q virt-lvmlockd
if [ ! -e "$hook" ] && [ ! -L "$hook" ]; then ok "remove takes the hook away"; else fail "remove takes the hook away"; fi
if [ -f /etc/virt-lvmlockd/config.yaml ]; then ok "remove keeps the configuration"; else fail "remove keeps the configuration"; fi
mkdir -p /run/virt-lvmlockd && echo '{}' > /run/virt-lvmlockd/owned-lvs.json
check "apt-get purge succeeds" 0 '' apt-get purge -y -q virt-lvmlockd
if [ ! -e /etc/virt-lvmlockd ] && [ ! -e /run/virt-lvmlockd ]; then ok "purge removes the configuration and the runtime state"; else fail "purge removes the configuration and the runtime state"; fi

echo "smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
