/**
 * What the hypervisor image holds besides its Debian packages: the command agent and its unit,
 * the network set-up of both hosts, and the few settings that make a test host boot quickly and
 * quietly. Everything here feeds the image's cache key through guestFilesFingerprint().
 */
import { createHash } from 'node:crypto';

/** The virtio-serial port name the agent reads (the guest sees /dev/virtio-ports/<name>). */
export const AGENT_PORT = 'org.virtlvmlockd.testbed.agent';

export interface HostSpec {
  name: string;
  mac: string;
  address: string;
  /** systemd machine id (32 hex digits): fixed, so journals and sanlock host names are stable. */
  machineId: string;
}

/** The two hypervisors, on a point-to-point link in TEST-NET-1. */
export const HOSTS: readonly HostSpec[] = [
  { name: 'hvA', mac: '52:54:00:00:02:0a', address: '192.0.2.1', machineId: 'a'.repeat(32) },
  { name: 'hvB', mac: '52:54:00:00:02:0b', address: '192.0.2.2', machineId: 'b'.repeat(32) },
];

/**
 * The agent, run by the guest's own node. One JSON request per line from the host, one JSON reply
 * per line back, matched by id. It runs argument vectors (no shell) with a deadline that kills,
 * and writes files (how the harness copies the .deb in). Node opens the port with O_CLOEXEC and
 * passes children only stdio, so lvm sees no leaked descriptors. With no host connected, a read
 * of the port returns end-of-file at once: the agent then reopens it after a short pause.
 */
export const AGENT_JS = `'use strict';
const fs = require('fs');
const { spawn } = require('child_process');
const PORT = '/dev/virtio-ports/${AGENT_PORT}';
const ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', HOME: '/root' };

function serve() {
  let fd;
  try {
    fd = fs.openSync(PORT, 'r+');
  } catch {
    setTimeout(serve, 500);
    return;
  }
  const send = (reply) => {
    const b = Buffer.from(JSON.stringify(reply) + '\\n');
    let off = 0;
    while (off < b.length) off += fs.writeSync(fd, b, off);
  };
  let buf = '';
  const input = fs.createReadStream('', { fd, autoClose: false, highWaterMark: 1 << 20 });
  input.setEncoding('utf8');
  input.on('data', (chunk) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim() !== '') handle(line, send);
    }
  });
  const again = () => {
    input.destroy();
    try { fs.closeSync(fd); } catch {}
    setTimeout(serve, 300);
  };
  input.once('end', again);
  input.once('error', again);
}

function handle(line, send) {
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    send({ id: null, error: 'request is not JSON: ' + e.message });
    return;
  }
  const t0 = Date.now();
  if (typeof req.put === 'string') {
    try {
      fs.writeFileSync(req.put, Buffer.from(req.data, 'base64'), { mode: req.mode || 0o644 });
      send({ id: req.id, rc: 0, signal: null, stdout: '', stderr: '', ms: Date.now() - t0, timedOut: false });
    } catch (e) {
      send({ id: req.id, error: 'write ' + req.put + ': ' + e.message });
    }
    return;
  }
  if (!Array.isArray(req.argv) || req.argv.length === 0) {
    send({ id: req.id, error: 'request has neither argv nor put' });
    return;
  }
  const child = spawn(req.argv[0], req.argv.slice(1), { cwd: '/root', env: Object.assign({}, ENV, req.env || {}), stdio: ['ignore', 'pipe', 'pipe'] });
  const out = [];
  const err = [];
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, req.timeoutMs || 60000);
  child.stdout.on('data', (d) => out.push(d));
  child.stderr.on('data', (d) => err.push(d));
  child.once('error', (e) => { clearTimeout(timer); send({ id: req.id, error: 'spawn ' + req.argv[0] + ': ' + e.message }); });
  child.once('close', (rc, signal) => {
    clearTimeout(timer);
    send({ id: req.id, rc, signal, stdout: Buffer.concat(out).toString('base64'), stderr: Buffer.concat(err).toString('base64'), ms: Date.now() - t0, timedOut });
  });
}

serve();
`;

export const AGENT_PATH = '/usr/local/lib/testbed-agent/agent.js';

export const AGENT_UNIT = `[Unit]
Description=Test bed command agent (virtio-serial port ${AGENT_PORT})
# Early, so the harness can watch the rest of the boot through it.
DefaultDependencies=no
After=systemd-udevd.service local-fs.target

[Service]
ExecStart=/usr/bin/node ${AGENT_PATH}
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
`;

/** systemd-networkd files, one per host, matched by MAC so one image serves both. */
export function networkFiles(): Record<string, string> {
  const files: Record<string, string> = {};
  for (const h of HOSTS) files[`10-${h.name}.network`] = `[Match]\nMACAddress=${h.mac}\n\n[Network]\nAddress=${h.address}/24\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n`;
  return files;
}

export const ETC_HOSTS = `127.0.0.1 localhost\n${HOSTS.map((h) => `${h.address} ${h.name}`).join('\n')}\n`;
export const FSTAB = '/dev/vda / ext4 rw,relatime 0 1\n';
/** sanlock's watchdog daemon (wdmd) needs /dev/watchdog. */
export const MODULES_LOAD = 'softdog\n';

/** Units that only slow a test host down or reach for the network. */
export const MASKED_UNITS = ['apt-daily.timer', 'apt-daily-upgrade.timer', 'e2scrub_all.timer', 'e2scrub_reap.service', 'fstrim.timer', 'systemd-networkd-wait-online.service', 'man-db.timer'];
export const ENABLED_UNITS = ['testbed-agent.service', 'systemd-networkd.service'];

export function guestFilesFingerprint(): string {
  return createHash('sha256')
    .update(JSON.stringify([AGENT_JS, AGENT_UNIT, networkFiles(), ETC_HOSTS, FSTAB, MODULES_LOAD, MASKED_UNITS, ENABLED_UNITS]))
    .digest('hex')
    .slice(0, 16);
}
