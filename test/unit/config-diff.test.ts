import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { defaultConfig, diffConfig, parseConfig } from '../../src/config/index.js';

/** A valid value other than the default for every key of the file. */
const OTHER_VALUES: Record<string, string> = {
  'log.level': 'debug',
  'dbus.address': 'unix:path=/run/other.sock',
  'libvirt.connection': '/org/libvirt/Test',
  'libvirt.resync_interval': '5m',
  'libvirt.call_timeout': '3s',
  'lvm.command': '/usr/sbin/lvm',
  'lvm.lockctl': '/usr/sbin/lvmlockctl',
  'lvm.timeout': '90s',
  'lvm.max_parallel': '8',
  'volumes.include_vgs': '[vg1]',
  'volumes.exclude_vgs': '[vg9]',
  'volumes.release_foreign': 'true',
  'hook.timeout': '5m',
  'hook.runtime_dir': '/run/other',
  'hook.wait_for_dead_holder': 'true',
  'actions.start': 'exclusive',
  'actions.started': 'exclusive',
  'actions.migrate': 'none',
  'peers.listen': '"192.0.2.1:16515"',
  'peers.hosts': '[{ name: hv2, url: "https://192.0.2.2:16515", host_id: 2 }]',
  'peers.tls': '{ ca: /etc/x/ca.pem }',
  'peers.request_timeout': '2s',
  'migration.demote_timeout': '20s',
  'migration.promote_grace': '5s',
  'metrics.listen': '"127.0.0.1:9716"',
};

/** The keys a reload cannot apply, as the configuration reference specifies them. */
const RESTART_KEYS = new Set(['dbus.address', 'libvirt.connection', 'hook.runtime_dir', 'peers.listen', 'peers.hosts', 'peers.tls', 'peers.allow', 'metrics.listen']);

function withValue(path: string, value: string): string {
  const [section, key] = path.split('.');
  return `${section}:\n  ${key}: ${value}\n`;
}

describe('diffConfig', () => {
  test('reports nothing for two equal configs', () => {
    assert.deepEqual(diffConfig(defaultConfig(), defaultConfig()), { applied: [], needRestart: [] });
  });

  for (const [path, value] of Object.entries(OTHER_VALUES)) {
    const expected = RESTART_KEYS.has(path) ? 'needRestart' : 'applied';
    test(`a change of ${path} alone is reported under ${expected}`, () => {
      const changed = parseConfig(withValue(path, value), 'changed.yaml');
      const change = diffConfig(defaultConfig(), changed);
      assert.deepEqual(change, {
        applied: expected === 'applied' ? [path] : [],
        needRestart: expected === 'needRestart' ? [path] : [],
      });
    });
  }

  test('every key of the example file that can change has a case above', () => {
    const example = parse(readFileSync(new URL('../../../config/virt-lvmlockd.yaml', import.meta.url), 'utf8')) as Record<
      string,
      Record<string, unknown>
    >;
    // stopped, release, restore, reconnect and attach accept a single action, so they never change.
    // peers.allow can only name hosts, so it never changes alone (tested with hosts below).
    // prepare is the start's only ex while start is none, so it never changes alone either
    // (the rule against two writers; tested in config-start-safety).
    const fixed = new Set(['actions.prepare', 'actions.stopped', 'actions.release', 'actions.restore', 'actions.reconnect', 'actions.attach', 'peers.allow']);
    const keys = Object.entries(example).flatMap(([section, keys]) => Object.keys(keys).map((key) => `${section}.${key}`));
    assert.deepEqual(
      keys.filter((key) => !fixed.has(key)),
      Object.keys(OTHER_VALUES),
    );
  });

  test('several changes are split between applied and needRestart, in the order the keys are documented', () => {
    const changed = parseConfig(
      [
        'hook:\n  runtime_dir: /run/x\n  timeout: 3m',
        'lvm:\n  max_parallel: 2',
        'dbus:\n  address: unix:path=/run/y.sock',
        'actions:\n  migrate: none',
      ].join('\n'),
      'changed.yaml',
    );
    assert.deepEqual(diffConfig(defaultConfig(), changed), {
      applied: ['lvm.max_parallel', 'hook.timeout', 'actions.migrate'],
      needRestart: ['dbus.address', 'hook.runtime_dir'],
    });
  });

  test('peers.allow changes with its hosts, and both need a restart', () => {
    const changed = parseConfig('peers:\n  hosts: [{ name: hv2, url: "https://192.0.2.2:16515" }]\n  allow: [hv2]\n', 'changed.yaml');
    assert.deepEqual(diffConfig(defaultConfig(), changed), { applied: [], needRestart: ['peers.hosts', 'peers.allow'] });
  });

  test('a list that changes only in content is a change', () => {
    const before = parseConfig('volumes:\n  include_vgs: [a, b]', 'a.yaml');
    const after = parseConfig('volumes:\n  include_vgs: [a, c]', 'b.yaml');
    assert.deepEqual(diffConfig(before, after).applied, ['volumes.include_vgs']);
    assert.deepEqual(diffConfig(before, parseConfig('volumes:\n  include_vgs: [a, b]', 'c.yaml')).applied, []);
  });

  test('going back to the defaults is reported like any other change', () => {
    const custom = parseConfig('libvirt:\n  connection: /org/libvirt/Test\n  call_timeout: 2s', 'a.yaml');
    assert.deepEqual(diffConfig(custom, defaultConfig()), {
      applied: ['libvirt.call_timeout'],
      needRestart: ['libvirt.connection'],
    });
  });
});
