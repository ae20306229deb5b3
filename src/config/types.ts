/** The typed configuration the rest of the daemon reads; the file's snake_case keys become camelCase here. */

export const LOG_LEVELS = ['error', 'warning', 'notice', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The qemu hook's operations (its second argument), in the order libvirt documents them. */
export const HOOK_OPS = [
  'prepare',
  'start',
  'started',
  'stopped',
  'release',
  'migrate',
  'restore',
  'reconnect',
  'attach',
] as const;
export type HookOp = (typeof HOOK_OPS)[number];

/** The seed hook's vocabulary: lvchange -aey, -asy, -an, or nothing. */
export const ACTIONS = ['exclusive', 'shared', 'unlock', 'none'] as const;
export type Action = (typeof ACTIONS)[number];

export interface Config {
  log: { level: LogLevel };
  dbus: { address: string };
  libvirt: { connection: string; resyncIntervalMs: number; callTimeoutMs: number };
  lvm: { command: string; lockctl: string; timeoutMs: number; maxParallel: number };
  volumes: {
    includeVgs: string[];
    excludeVgs: string[];
    /** Reconcile may release LVs of a managed VG that no domain uses and the daemon did not take. */
    releaseForeign: boolean;
  };
  hook: {
    timeoutMs: number;
    runtimeDir: string;
    /** A prepare refused only by holders that stopped renewing waits for their leases to expire. */
    waitForDeadHolder: boolean;
  };
  actions: Record<HookOp, Action>;
  peers: {
    listen: string;
    hosts: PeerHost[];
    /** cert/key: this host's server pair (listening); clientCert/clientKey: its client pair (requests). */
    tls: { ca: string; cert: string; key: string; clientCert: string; clientKey: string };
    /** Certificate names accepted from peers; empty means the names of `hosts`. */
    allow: string[];
    requestTimeoutMs: number;
  };
  migration: { demoteTimeoutMs: number; promoteGraceMs: number };
  /**
   * listen: where the Prometheus exposition is served over plain HTTP; "" serves none. The file's
   * schema always fills it; optional so that a Config written out in code may leave it out.
   */
  metrics: { listen: string };
}

export interface PeerHost {
  name: string;
  url: string;
  /** The peer's lvmlockd/sanlock host_id, to ask the right peer when lvm names the holder. */
  hostId?: number;
}
