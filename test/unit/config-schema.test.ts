import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMap, isScalar, parseDocument, type Pair, type YAMLMap } from 'yaml';
import {
  ConfigError,
  defaultConfig,
  hookGatedOps,
  loadConfig,
  parseConfig,
  type Config,
} from '../../src/config/index.js';

const FILE = '/etc/virt-lvmlockd/test.yaml';
const EXAMPLE_URL = new URL('../../../config/virt-lvmlockd.yaml', import.meta.url);

/** The issues a text is refused with, or a failure if it is accepted. */
function issuesOf(text: string): string[] {
  try {
    parseConfig(text, FILE);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.issues;
  }
  assert.fail(`expected ${JSON.stringify(text)} to be refused`);
}

/** Asserts the text is refused with exactly one issue, at `key`, whose reason matches. */
function assertRefused(text: string, key: string, reason: RegExp): void {
  const issues = issuesOf(text);
  assert.equal(issues.length, 1, `one issue expected, got:\n${issues.join('\n')}`);
  assert.ok(issues[0]!.startsWith(`${key}: `), `issue should be about ${key}: ${issues[0]}`);
  assert.match(issues[0]!, reason);
}

const DOCUMENTED_DEFAULTS: Config = {
  log: { level: 'info' },
  dbus: { address: 'system' },
  libvirt: { connection: '/org/libvirt/QEMU', resyncIntervalMs: 60_000, callTimeoutMs: 10_000 },
  lvm: { command: 'lvm', lockctl: 'lvmlockctl', timeoutMs: 60_000, maxParallel: 4 },
  volumes: { includeVgs: [], excludeVgs: [], releaseForeign: false },
  hook: { timeoutMs: 120_000, runtimeDir: '/run/virt-lvmlockd', waitForDeadHolder: false },
  actions: {
    prepare: 'exclusive',
    start: 'none',
    started: 'none',
    stopped: 'unlock',
    release: 'unlock',
    migrate: 'shared',
    restore: 'none',
    reconnect: 'none',
    attach: 'none',
  },
  peers: {
    listen: '',
    hosts: [],
    tls: {
      ca: '/etc/pki/CA/cacert.pem',
      cert: '/etc/pki/libvirt/servercert.pem',
      key: '/etc/pki/libvirt/private/serverkey.pem',
      clientCert: '/etc/pki/libvirt/clientcert.pem',
      clientKey: '/etc/pki/libvirt/private/clientkey.pem',
    },
    allow: [],
    requestTimeoutMs: 5000,
  },
  migration: { demoteTimeoutMs: 30_000, promoteGraceMs: 10_000 },
  metrics: { listen: '' },
};

/** Every key of the file, as the configuration reference lists them. */
const DOCUMENTED_KEYS = [
  'log.level',
  'dbus.address',
  'libvirt.connection',
  'libvirt.resync_interval',
  'libvirt.call_timeout',
  'lvm.command',
  'lvm.lockctl',
  'lvm.timeout',
  'lvm.max_parallel',
  'volumes.include_vgs',
  'volumes.exclude_vgs',
  'volumes.release_foreign',
  'hook.timeout',
  'hook.runtime_dir',
  'hook.wait_for_dead_holder',
  ...['prepare', 'start', 'started', 'stopped', 'release', 'migrate', 'restore', 'reconnect', 'attach'].map((op) => `actions.${op}`),
  'peers.listen',
  'peers.hosts',
  'peers.tls',
  'peers.allow',
  'peers.request_timeout',
  'migration.demote_timeout',
  'migration.promote_grace',
  'metrics.listen',
];

describe('defaults', () => {
  test('defaultConfig holds the documented defaults', () => {
    assert.deepEqual(defaultConfig(), DOCUMENTED_DEFAULTS);
  });

  test('each call returns a fresh object', () => {
    const first = defaultConfig();
    first.volumes.includeVgs.push('vg1');
    first.actions.prepare = 'none';
    assert.deepEqual(defaultConfig(), DOCUMENTED_DEFAULTS);
  });

  for (const [name, text] of [
    ['an empty file', ''],
    ['a file of comments only', '# nothing here\n\n   # still nothing\n'],
    ['sections whose keys are all commented out', 'log:\n  # level: debug\nlvm:\nactions:\n  # prepare: shared\n'],
    ['empty mappings', 'log: {}\nactions: {}\n'],
  ]) {
    test(`${name} gives the defaults`, () => {
      assert.deepEqual(parseConfig(text!, FILE), DOCUMENTED_DEFAULTS);
    });
  }
});

describe('the example file', () => {
  const text = readFileSync(EXAMPLE_URL, 'utf8');

  test('parses to exactly defaultConfig()', () => {
    assert.deepEqual(parseConfig(text, 'virt-lvmlockd.yaml'), defaultConfig());
  });

  test('shows every key, with a comment that says whether a reload applies it', () => {
    // Which keys need a restart, as the configuration reference specifies them.
    const restartKeys = new Set(['dbus.address', 'libvirt.connection', 'hook.runtime_dir', 'peers.listen', 'peers.hosts', 'peers.tls', 'peers.allow', 'metrics.listen']);
    const document = parseDocument(text);
    const root = document.contents as YAMLMap;
    const shown: string[] = [];
    for (const sectionPair of root.items as Pair[]) {
      const section = String((sectionPair.key as { value: unknown }).value);
      const keys = sectionPair.value;
      assert.ok(isMap(keys), `${section} should be a mapping`);
      keys.items.forEach((pair, index) => {
        assert.ok(isScalar(pair.key));
        const path = `${section}.${String(pair.key.value)}`;
        shown.push(path);
        // yaml attaches the comment before a mapping's first key to the mapping itself.
        const comment = (index === 0 ? keys.commentBefore : pair.key.commentBefore) ?? '';
        const flat = comment.replace(/\s*\n\s*/g, ' ');
        if (restartKeys.has(path)) {
          assert.match(flat, /Restart needed\./, `${path} needs a restart`);
          assert.doesNotMatch(flat, /Applied on reload/, path);
        } else {
          assert.match(flat, /Applied on reload\./, `${path} is applied on reload`);
          assert.doesNotMatch(flat, /Restart needed/, path);
        }
      });
    }
    assert.deepEqual(shown, DOCUMENTED_KEYS);
  });

  test('documents that ops left out of actions keep their default', () => {
    assert.match(text, /op left out of this section keeps its default/);
  });
});

describe('reading values', () => {
  test('snake_case keys become camelCase fields, durations become milliseconds', () => {
    const config = parseConfig(
      [
        'log:',
        '  level: debug',
        'dbus:',
        '  address: unix:path=/run/test/bus.sock',
        'libvirt:',
        '  connection: /org/libvirt/Test',
        '  resync_interval: 2m',
        '  call_timeout: 1.5s',
        'lvm:',
        '  command: /usr/sbin/lvm',
        '  lockctl: /usr/sbin/lvmlockctl',
        '  timeout: 45s',
        '  max_parallel: 16',
        'volumes:',
        '  include_vgs: [vg1, "2024"]',
        '  exclude_vgs:',
        '    - vg_local',
        'hook:',
        '  timeout: 3m',
        '  runtime_dir: /run/test',
        '  wait_for_dead_holder: true',
        'actions:',
        '  started: exclusive',
      ].join('\n'),
      FILE,
    );
    assert.deepEqual(config, {
      log: { level: 'debug' },
      dbus: { address: 'unix:path=/run/test/bus.sock' },
      libvirt: { connection: '/org/libvirt/Test', resyncIntervalMs: 120_000, callTimeoutMs: 1500 },
      lvm: { command: '/usr/sbin/lvm', lockctl: '/usr/sbin/lvmlockctl', timeoutMs: 45_000, maxParallel: 16 },
      volumes: { includeVgs: ['vg1', '2024'], excludeVgs: ['vg_local'], releaseForeign: false },
      hook: { timeoutMs: 180_000, runtimeDir: '/run/test', waitForDeadHolder: true },
      actions: { ...DOCUMENTED_DEFAULTS.actions, started: 'exclusive' },
      peers: DOCUMENTED_DEFAULTS.peers,
      migration: DOCUMENTED_DEFAULTS.migration,
      metrics: DOCUMENTED_DEFAULTS.metrics,
    });
  });

  test('peers: hosts become name, url and hostId; allow must name configured hosts', () => {
    const config = parseConfig(
      [
        'peers:',
        '  listen: "192.0.2.1:16515"',
        '  hosts:',
        '    - { name: hv2, url: "https://192.0.2.2:16515/", host_id: 2 }',
        '    - { name: hv3, url: "https://[2001:db8::3]:16515" }',
        '  allow: [hv2]',
        '  tls: { ca: /etc/x/ca.pem }',
      ].join('\n'),
      FILE,
    );
    assert.deepEqual(config.peers.hosts, [
      { name: 'hv2', url: 'https://192.0.2.2:16515', hostId: 2 },
      { name: 'hv3', url: 'https://[2001:db8::3]:16515', hostId: undefined },
    ]);
    assert.deepEqual(config.peers.tls, { ...DOCUMENTED_DEFAULTS.peers.tls, ca: '/etc/x/ca.pem' });
    assertRefused('peers:\n  hosts: [{ name: hv2, url: "https://192.0.2.2:1" }]\n  allow: [hv9]', 'peers.allow[0]', /hv9 is not one of peers.hosts/);
    assertRefused('peers:\n  hosts: [{ name: hv2, url: "http://192.0.2.2:1" }]', 'peers.hosts[0].url', /not https/);
    assertRefused('peers:\n  listen: "192.0.2.1"', 'peers.listen', /is not address:port/);
  });

  test('accepts every log level', () => {
    for (const level of ['error', 'warning', 'notice', 'info', 'debug'] as const) {
      assert.equal(parseConfig(`log:\n  level: ${level}`, FILE).log.level, level);
    }
  });

  test('accepts D-Bus addresses with several keys, escapes and fallbacks', () => {
    for (const address of [
      'unix:path=/run/dbus/system_bus_socket',
      'unix:abstract=/tmp/dbus-x,guid=0123456789abcdef',
      'tcp:host=127.0.0.1,port=12345',
      'unix:path=/run/with%20space;unix:path=/run/other',
    ]) {
      assert.equal(parseConfig(`dbus:\n  address: "${address}"`, FILE).dbus.address, address);
    }
  });

  test('accepts the root object path and the limits of max_parallel', () => {
    assert.equal(parseConfig('libvirt:\n  connection: /', FILE).libvirt.connection, '/');
    assert.equal(parseConfig('lvm:\n  max_parallel: 1', FILE).lvm.maxParallel, 1);
    assert.equal(parseConfig('lvm:\n  max_parallel: 64', FILE).lvm.maxParallel, 64);
    assert.equal(parseConfig('lvm:\n  timeout: 1s', FILE).lvm.timeoutMs, 1000);
  });
});

describe('errors', () => {
  test('ConfigError names the file on every line, one line per issue', () => {
    let caught: unknown;
    try {
      parseConfig('lvm:\n  timeout: "30"\n  max_parallel: 0\n', '/etc/x.yaml');
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof ConfigError);
    assert.equal(caught.file, '/etc/x.yaml');
    assert.deepEqual(caught.issues, [
      'lvm.timeout: "30" is not a duration; write it like 30s or 500ms (units ms, s, m, h; 1.5s also works)',
      'lvm.max_parallel: 0 is out of range; write a whole number from 1 to 64, without quotes',
    ]);
    assert.equal(caught.message, caught.issues.map((issue) => `/etc/x.yaml: ${issue}`).join('\n'));
  });

  test('a bare number for a duration is refused with the accepted forms', () => {
    assertRefused('lvm:\n  timeout: 30', 'lvm.timeout', /^lvm\.timeout: 30 is not a duration.*write it like 30s or 500ms/);
    assertRefused('hook:\n  timeout: 120', 'hook.timeout', /bare number/);
  });

  test('durations below their minimum are refused, naming the minimum', () => {
    assertRefused('lvm:\n  timeout: 900ms', 'lvm.timeout', /900ms is shorter than the minimum of 1s \(lvmlockd takes about 5\.5s/);
    assertRefused('libvirt:\n  resync_interval: 999ms', 'libvirt.resync_interval', /shorter than the minimum of 1s/);
    assertRefused('libvirt:\n  call_timeout: 50ms', 'libvirt.call_timeout', /shorter than the minimum of 100ms/);
  });

  test('a duration longer than a timer can run is refused', () => {
    assertRefused('libvirt:\n  resync_interval: 600h', 'libvirt.resync_interval', /longer than the longest timer/);
  });

  test('unknown keys are refused, naming the key and the accepted ones', () => {
    const issues = issuesOf('lvm:\n  tiemout: 30s\n  foo: 1\nlogs:\n  level: info\n');
    assert.deepEqual(issues, [
      'lvm.tiemout: unknown key (did you mean timeout?); the accepted keys are command, lockctl, timeout and max_parallel',
      'lvm.foo: unknown key; the accepted keys are command, lockctl, timeout and max_parallel',
      'logs: unknown section (did you mean log?); the accepted sections are log, dbus, libvirt, lvm, volumes, hook, actions, peers, migration and metrics',
    ]);
  });

  test('an unknown hook op is refused, naming the accepted ops', () => {
    assertRefused(
      'actions:\n  prepair: exclusive',
      'actions.prepair',
      /unknown hook op \(did you mean prepare\?\); the accepted hook ops are prepare, start, started, stopped, release, migrate, restore, reconnect and attach$/,
    );
  });

  test('YAML syntax errors give the line and column', () => {
    const issues = issuesOf('log:\n  level: info\nlvm:\n  timeout: [30s\n');
    assert.ok(issues.length >= 1);
    assert.match(issues[0]!, /^line \d+, column \d+: /);
    assert.deepEqual(issuesOf('lvm:\n  timeout: 10s\n  timeout: 20s\n'), ['line 3, column 3: Map keys must be unique']);
  });

  test('an alias to a missing anchor is refused', () => {
    assert.match(issuesOf('lvm:\n  timeout: *nothing\n')[0]!, /nothing/);
  });

  test('a file that is not a mapping is refused, listing the sections', () => {
    assert.deepEqual(issuesOf('- log\n- lvm\n'), [
      'the file holds a list, but it must be a mapping of sections (log, dbus, libvirt, lvm, volumes, hook, actions, peers, migration, metrics)',
    ]);
    assertRefused('lvm: 5', 'lvm', /5 is not a mapping.*\(command, lockctl, timeout, max_parallel\)/);
  });

  test('a key written without a value is refused, not defaulted', () => {
    assertRefused('log:\n  level:\n', 'log.level', /has no value; write error, warning, notice, info or debug, or remove the key/);
  });

  test('values of the wrong kind are refused with what to write', () => {
    assertRefused('log:\n  level: verbose', 'log.level', /"verbose" is not a log level; write error, warning, notice, info or debug/);
    assertRefused('lvm:\n  max_parallel: 65', 'lvm.max_parallel', /65 is out of range/);
    assertRefused('lvm:\n  max_parallel: 2.5', 'lvm.max_parallel', /2\.5 is out of range/);
    assertRefused('lvm:\n  max_parallel: "4"', 'lvm.max_parallel', /"4" is not a number/);
    assertRefused('libvirt:\n  connection: org/libvirt', 'libvirt.connection', /not a D-Bus object path/);
    assertRefused('libvirt:\n  connection: /org/libvirt/', 'libvirt.connection', /not a D-Bus object path/);
    assertRefused('libvirt:\n  connection: /org/lib-virt', 'libvirt.connection', /not a D-Bus object path/);
    assertRefused('dbus:\n  address: session', 'dbus.address', /neither system nor a D-Bus address/);
    assertRefused('dbus:\n  address: "unix:path=/run/a b"', 'dbus.address', /neither system nor a D-Bus address/);
    assertRefused('dbus:\n  address: "unix:path"', 'dbus.address', /neither system nor a D-Bus address/);
    assertRefused('hook:\n  runtime_dir: run/virt-lvmlockd', 'hook.runtime_dir', /not an absolute path/);
  });

  test('program names must be a single name or an absolute path', () => {
    assertRefused('lvm:\n  command: "lvm --config x"', 'lvm.command', /run without a shell, so it cannot carry arguments/);
    assertRefused('lvm:\n  lockctl: sbin/lvmlockctl', 'lvm.lockctl', /relative path/);
    assertRefused('lvm:\n  command: ""', 'lvm.command', /is empty/);
  });

  test('volume group lists hold valid VG names', () => {
    assertRefused('volumes:\n  include_vgs: vg1', 'volumes.include_vgs', /"vg1" is not a list of volume group names; write a list like \[vg1, vg2\]/);
    assertRefused('volumes:\n  include_vgs: [vg1, 123]', 'volumes.include_vgs[1]', /123 is a number.*in quotes/);
    assertRefused('volumes:\n  exclude_vgs: ["-vg"]', 'volumes.exclude_vgs[0]', /not a valid volume group name/);
    assertRefused('volumes:\n  exclude_vgs: [".."]', 'volumes.exclude_vgs[0]', /not a valid volume group name/);
    assertRefused('volumes:\n  exclude_vgs: ["a/b"]', 'volumes.exclude_vgs[0]', /not a valid volume group name/);
    assertRefused(`volumes:\n  exclude_vgs: [${'v'.repeat(128)}]`, 'volumes.exclude_vgs[0]', /longer than LVM's limit of 127/);
  });

  test('a VG both included and excluded is refused', () => {
    assertRefused(
      'volumes:\n  include_vgs: [a, b]\n  exclude_vgs: [c, b]',
      'volumes.exclude_vgs[1]',
      /"b" is also in volumes\.include_vgs/,
    );
  });

  test('a hook timeout not longer than the LVM timeout is refused', () => {
    assertRefused('hook:\n  timeout: 60s', 'hook.timeout', /1m is not longer than lvm\.timeout \(1m\)/);
    assertRefused('lvm:\n  timeout: 150s', 'hook.timeout', /2m is not longer than lvm\.timeout \(150s\)/);
    assert.equal(parseConfig('lvm:\n  timeout: 150s\nhook:\n  timeout: 151s', FILE).hook.timeoutMs, 151_000);
  });

  test('checks across keys wait until every key is valid on its own', () => {
    assert.deepEqual(issuesOf('lvm:\n  timeout: 3\nvolumes:\n  include_vgs: [a]\n  exclude_vgs: [a]'), [
      'lvm.timeout: 3 is not a duration: a bare number has no unit; write it like 30s or 500ms (units ms, s, m, h; 1.5s also works)',
    ]);
  });

  test('all problems of a file are reported at once', () => {
    const issues = issuesOf('log:\n  level: loud\nlvm:\n  max_parallel: 0\nhook:\n  runtime_dir: x\n  colour: red\n');
    assert.deepEqual(
      issues.map((issue) => issue.slice(0, issue.indexOf(':'))),
      ['log.level', 'lvm.max_parallel', 'hook.runtime_dir', 'hook.colour'],
    );
  });
});

describe('actions', () => {
  test('ops left out of the section keep their default', () => {
    const config = parseConfig('actions:\n  started: exclusive\n', FILE);
    assert.deepEqual(config.actions, { ...DOCUMENTED_DEFAULTS.actions, started: 'exclusive' });
  });

  test('prepare, start, started and migrate accept exclusive, shared and none as actions, and refuse unlock', () => {
    for (const action of ['exclusive', 'shared', 'none'] as const) {
      assert.equal(parseConfig(`actions:\n  migrate: ${action}`, FILE).actions.migrate, action);
    }
    // exclusive and none, each in a combination that starts with ex.
    assert.equal(parseConfig('actions:\n  prepare: none\n  start: exclusive\n', FILE).actions.prepare, 'none');
    assert.equal(parseConfig('actions:\n  start: exclusive\n', FILE).actions.start, 'exclusive');
    assert.equal(parseConfig('actions:\n  started: exclusive\n', FILE).actions.started, 'exclusive');
    // shared is a valid action; only the rule against two writers refuses it at a start op.
    for (const op of ['prepare', 'start', 'started'] as const) {
      assertRefused(`actions:\n  ${op}: shared`, `actions.${op}`, /both write its disks; write \w+: (exclusive|none)/);
    }
    for (const op of ['prepare', 'start', 'started', 'migrate'] as const) {
      const safe = op === 'prepare' ? '\n  start: exclusive' : '';
      assertRefused(`actions:\n  ${op}: unlock${safe}`, `actions.${op}`, /"unlock" is not accepted for .*; write exclusive, shared or none$/);
    }
  });

  test('stopped and release accept only unlock, and say that keeping locks would leak them', () => {
    for (const op of ['stopped', 'release'] as const) {
      assert.equal(parseConfig(`actions:\n  ${op}: unlock`, FILE).actions[op], 'unlock');
      for (const action of ['exclusive', 'shared', 'none']) {
        assertRefused(
          `actions:\n  ${op}: ${action}`,
          `actions.${op}`,
          /always releases a stopped domain's locks, since keeping them would leak locks.*; write unlock$/,
        );
      }
    }
  });

  test('restore, reconnect and attach accept only none, each saying why', () => {
    const reasons = {
      restore: /a restore runs the prepare hook too/,
      reconnect: /a failing reconnect hook makes libvirt kill the running QEMU/,
      attach: /never calls the attach hook/,
    };
    for (const [op, reason] of Object.entries(reasons)) {
      assert.equal(parseConfig(`actions:\n  ${op}: none`, FILE).actions[op as 'restore'], 'none');
      for (const action of ['exclusive', 'shared', 'unlock']) {
        assertRefused(`actions:\n  ${op}: ${action}`, `actions.${op}`, reason);
      }
    }
  });

  test('a word that is no action is refused, listing the actions the op accepts', () => {
    assertRefused('actions:\n  migrate: demote', 'actions.migrate', /"demote" is not an action; write exclusive, shared or none$/);
  });

  test("the seed hook's default section is refused at prepare, saying why and what to write", () => {
    const carried = 'actions:\n  prepare: shared\n  started: exclusive\n  stopped: unlock\n  release: unlock\n  migrate: shared\n';
    assertRefused(carried, 'actions.prepare', /"shared" takes only a shared lock before QEMU opens the disks.*two hosts could then start the same guest.*; write prepare: exclusive/);
  });

  test("the seed hook's section with prepare: exclusive is accepted and completed", () => {
    const carried = 'actions:\n  prepare: exclusive\n  started: exclusive\n  stopped: unlock\n  release: unlock\n  migrate: shared\n';
    assert.deepEqual(parseConfig(carried, FILE).actions, { ...DOCUMENTED_DEFAULTS.actions, started: 'exclusive' });
  });
});

describe('hookGatedOps', () => {
  test('by default the hook waits at prepare and migrate', () => {
    assert.deepEqual(hookGatedOps(defaultConfig()), ['migrate', 'prepare']);
  });

  test('gates exactly the ops that take a lock, sorted', () => {
    const config = parseConfig('actions:\n  prepare: none\n  started: exclusive\n  start: exclusive\n', FILE);
    assert.deepEqual(hookGatedOps(config), ['migrate', 'start', 'started']);
  });

  test('gates only the start when the migrate op takes no lock', () => {
    assert.deepEqual(hookGatedOps(parseConfig('actions:\n  migrate: none\n', FILE)), ['prepare']);
  });
});

describe('loadConfig', () => {
  let directory = '';
  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'config-test-'));
  });
  after(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  test('reads and parses a file', async () => {
    const file = join(directory, 'ok.yaml');
    await writeFile(file, 'lvm:\n  max_parallel: 2\n');
    assert.equal((await loadConfig(file)).lvm.maxParallel, 2);
  });

  test('names the file in parse errors', async () => {
    const file = join(directory, 'bad.yaml');
    await writeFile(file, 'lvm:\n  max_parallel: 0\n');
    await assert.rejects(loadConfig(file), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.file, file);
      assert.ok(error.message.startsWith(`${file}: lvm.max_parallel: `), error.message);
      return true;
    });
  });

  test('a missing file is a ConfigError that names the file and the reason', async () => {
    const file = join(directory, 'missing.yaml');
    await assert.rejects(loadConfig(file), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.message, `${file}: cannot read the file: it does not exist`);
      return true;
    });
  });

  test('a directory is a ConfigError that says so', async () => {
    await assert.rejects(loadConfig(directory), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.message, `${directory}: cannot read the file: it is a directory`);
      return true;
    });
  });
});

describe('volumes.release_foreign', () => {
  test('is false by default and reads true or false', () => {
    assert.equal(defaultConfig().volumes.releaseForeign, false);
    assert.equal(parseConfig('volumes:\n  release_foreign: true\n', FILE).volumes.releaseForeign, true);
    assert.equal(parseConfig('volumes:\n  release_foreign: false\n', FILE).volumes.releaseForeign, false);
  });

  test('refuses anything that only looks like a boolean, saying what to write', () => {
    for (const text of ['yes', '"true"', '1']) {
      assertRefused(`volumes:\n  release_foreign: ${text}\n`, 'volumes.release_foreign', /is not true or false; write true or false, without quotes$/);
    }
  });
});
