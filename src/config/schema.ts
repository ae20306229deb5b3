/**
 * The config file's schema: every key with its default, its checks, its name in the typed
 * config and whether a reload applies it (live) or a restart is needed (restart).
 */
import { actionsSection } from './actions.js';
import { formatDuration } from './duration.js';
import { configFile, live, restart, section } from './settings.js';
import { LOG_LEVELS } from './types.js';
import {
  absolutePath,
  dbusAddress,
  duration,
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
    }),
    hook: section('hook', {
      timeout: live('timeoutMs', duration({ min: '1s', default: '120s' })),
      // The hook finds the daemon through this directory; moving it under a running daemon
      // would strand hooks that already read the old place.
      runtime_dir: restart('runtimeDir', absolutePath().default('/run/virt-lvmlockd')),
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
  },
  (config, report) => {
    const included = new Set(config.volumes.includeVgs);
    for (const [index, vg] of config.volumes.excludeVgs.entries()) {
      if (included.has(vg)) {
        report(
          ['volumes', 'exclude_vgs', index],
          `${JSON.stringify(vg)} is also in volumes.include_vgs; a volume group cannot be both included and excluded`,
        );
      }
    }
    for (const [index, name] of config.peers.allow.entries()) {
      if (!config.peers.hosts.some((h) => h.name === name)) {
        report(['peers', 'allow', index], `${name} is not one of peers.hosts; only configured peers can be allowed`);
      }
    }
    if (config.peers.hosts.length > 0 && config.migration.demoteTimeoutMs >= config.hook.timeoutMs) {
      report(['migration', 'demote_timeout'], `must be shorter than hook.timeout (${formatDuration(config.hook.timeoutMs)}), or the hook gives up first`);
    }
    if (config.hook.timeoutMs <= config.lvm.timeoutMs) {
      report(
        ['hook', 'timeout'],
        `${formatDuration(config.hook.timeoutMs)} is not longer than lvm.timeout (${formatDuration(config.lvm.timeoutMs)}): ` +
          'the hook would give up, and libvirt abort the start, while an LVM command it waits for may still succeed',
      );
    }
  },
);
