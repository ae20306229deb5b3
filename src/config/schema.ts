/**
 * The config file's schema: every key with its default, its checks, its name in the typed
 * config and whether a reload applies it (live) or a restart is needed (restart).
 */
import { actionsSection } from './actions.js';
import { crossKeyIssues } from './checks.js';
import { configFile, live, restart, section } from './settings.js';
import { LOG_LEVELS, type Config } from './types.js';
import {
  absolutePath,
  dbusAddress,
  duration,
  flag,
  listenAddress,
  objectPath,
  oneOf,
  peerHosts,
  peerNameList,
  program,
  tlsFiles,
  vgNameList,
  wholeNumber,
} from './values.js';

export const CONFIG_FILE = configFile(
  {
    log: section('log', {
      level: live('level', oneOf(LOG_LEVELS, 'log level').default('info')),
    }),
    dbus: section('dbus', {
      // The connection is opened once at start; swapping buses under live subscriptions is not worth it.
      address: restart('address', dbusAddress().default('system')),
    }),
    libvirt: section('libvirt', {
      connection: restart('connection', objectPath().default('/org/libvirt/QEMU')),
      resync_interval: live('resyncIntervalMs', duration({ min: '1s', default: '60s' })),
      call_timeout: live('callTimeoutMs', duration({ min: '100ms', default: '10s' })),
    }),
    lvm: section('lvm', {
      command: live('command', program().default('lvm')),
      lockctl: live('lockctl', program().default('lvmlockctl')),
      timeout: live(
        'timeoutMs',
        duration({ min: '1s', default: '60s', why: 'lvmlockd takes about 5.5s just to refuse a shared lock held elsewhere' }),
      ),
      max_parallel: live('maxParallel', wholeNumber(1, 64).default(4)),
    }),
    volumes: section('volumes', {
      include_vgs: live('includeVgs', vgNameList()),
      exclude_vgs: live('excludeVgs', vgNameList()),
      release_foreign: live('releaseForeign', flag().default(false)),
    }),
    hook: section('hook', {
      timeout: live('timeoutMs', duration({ min: '1s', default: '120s' })),
      // The hook finds the daemon through this directory; moving it under a running daemon
      // would strand hooks that already read the old place.
      runtime_dir: restart('runtimeDir', absolutePath().default('/run/virt-lvmlockd')),
      // Off by default: waiting holds libvirt's start for up to hook.timeout, which an operator
      // must choose knowingly (a holder's lease frees about 140 s after its last renewal).
      wait_for_dead_holder: live('waitForDeadHolder', flag().default(false)),
    }),
    actions: actionsSection,
    peers: section('peers', {
      // The server and the peers' identities are set up once; a reload must not drop a listener
      // in the middle of a migration handoff.
      listen: restart('listen', listenAddress().default('')),
      hosts: restart('hosts', peerHosts()),
      tls: restart('tls', tlsFiles()),
      allow: restart('allow', peerNameList()),
      request_timeout: live('requestTimeoutMs', duration({ min: '100ms', default: '5s' })),
    }),
    migration: section('migration', {
      demote_timeout: live('demoteTimeoutMs', duration({ min: '1s', default: '30s' })),
      promote_grace: live('promoteGraceMs', duration({ min: '1s', default: '10s' })),
    }),
    metrics: section('metrics', {
      // Listening is set up once at start, like the peer server.
      listen: restart('listen', listenAddress({ port: 9716, none: 'no metrics endpoint' }).default('')),
    }),
  },
  // The rules live in checks.ts, so a reload can run them again on the merged config.
  (config, report) => {
    for (const issue of crossKeyIssues(config as Config)) report(issue.path, issue.message);
  },
);
