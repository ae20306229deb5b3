/**
 * The configuration of the daemon under test on one instance, as a plain object the tests can
 * change before it is written (YAML). It runs inside the instance's namespaces, so it uses
 * production defaults where they fit: the system bus, qemu:///system, /run/virt-lvmlockd.
 */
import { join } from 'node:path';
import { stringify } from 'yaml';
import { SIM_BIN } from '../harness/paths.js';
import type { TlsFiles } from './certs.js';

export const HOOK_RUNTIME_DIR = '/run/virt-lvmlockd';
export const PEER_PORT = 16515;

export interface PeerHost {
  name: string;
  ip: string;
  hostId: number;
}

export interface DaemonConfigInput {
  self: PeerHost;
  /** The other instances; no peers section when undefined. */
  peers?: PeerHost[];
  tls?: TlsFiles;
}

export type DaemonConfig = Record<string, Record<string, unknown>>;

export function daemonConfig(input: DaemonConfigInput): DaemonConfig {
  const config: DaemonConfig = {
    log: { level: 'debug' },
    dbus: { address: 'system' },
    libvirt: { connection: '/org/libvirt/QEMU', resync_interval: '60s', call_timeout: '10s' },
    lvm: { command: join(SIM_BIN, 'lvm'), lockctl: join(SIM_BIN, 'lvmlockctl'), timeout: '10s', max_parallel: 4 },
    hook: { timeout: '60s', runtime_dir: HOOK_RUNTIME_DIR },
  };
  if (input.peers && input.tls) {
    config.peers = {
      listen: `${input.self.ip}:${PEER_PORT}`,
      hosts: input.peers.map((p) => ({ name: p.name, url: `https://${p.ip}:${PEER_PORT}`, host_id: p.hostId })),
      tls: { ca: input.tls.ca, cert: input.tls.cert, key: input.tls.key, client_cert: input.tls.cert, client_key: input.tls.key },
      allow: input.peers.map((p) => p.name),
    };
    config.migration = { demote_timeout: '30s' };
  }
  return config;
}

export function renderDaemonConfig(config: DaemonConfig): string {
  return stringify(config);
}
