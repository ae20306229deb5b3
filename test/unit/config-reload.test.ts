import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, mergeForReload, parseConfig, planReload } from '../../src/config/index.js';

const FILE = '/etc/virt-lvmlockd/test.yaml';

const RUNNING = parseConfig(
  [
    'dbus:\n  address: unix:path=/run/a.sock',
    'libvirt:\n  connection: /org/libvirt/Test',
    'hook:\n  timeout: 120s\n  runtime_dir: /run/a',
    'peers:',
    '  listen: "192.0.2.1:16515"',
    '  hosts: [{ name: hv2, url: "https://192.0.2.2:16515", host_id: 2 }]',
    '  allow: [hv2]',
    '  tls: { ca: /etc/a/ca.pem }',
    'migration:\n  demote_timeout: 30s',
  ].join('\n'),
  'running.yaml',
);

describe('mergeForReload', () => {
  test('keeps every restart-only key at its running value and takes every live key from the new file', () => {
    const next = parseConfig(
      [
        'log:\n  level: debug',
        'dbus:\n  address: system',
        'libvirt:\n  connection: /org/libvirt/QEMU\n  call_timeout: 3s',
        'hook:\n  timeout: 90s\n  runtime_dir: /run/b',
        'volumes:\n  release_foreign: true',
        'peers:\n  listen: ""\n  request_timeout: 2s',
      ].join('\n'),
      FILE,
    );
    const merged = mergeForReload(RUNNING, next);
    assert.deepEqual(merged, {
      ...next,
      dbus: RUNNING.dbus,
      libvirt: { ...next.libvirt, connection: '/org/libvirt/Test' },
      hook: { timeoutMs: 90_000, runtimeDir: '/run/a', waitForDeadHolder: false },
      peers: { ...RUNNING.peers, requestTimeoutMs: 2000 },
    });
    assert.equal(merged.volumes.releaseForeign, true);
  });

  test('shares no object with its inputs', () => {
    const next = parseConfig('', FILE);
    const merged = mergeForReload(RUNNING, next);
    merged.peers.hosts.push({ name: 'hv9', url: 'https://192.0.2.9:1' });
    merged.volumes.includeVgs.push('vg9');
    assert.equal(RUNNING.peers.hosts.length, 1);
    assert.deepEqual(next.volumes.includeVgs, []);
  });
});

describe('planReload', () => {
  test('returns the merged config and the change', () => {
    const next = parseConfig('peers:\n  listen: ""\nlog:\n  level: debug\n', FILE);
    const plan = planReload(RUNNING, next, FILE);
    assert.deepEqual(plan.config, mergeForReload(RUNNING, next));
    assert.deepEqual(plan.change.applied, ['log.level']);
    assert.ok(plan.change.needRestart.includes('peers.hosts'));
  });

  test('refuses a file valid alone whose live keys break a rule together with the running restart-only keys', () => {
    // Without peers the file may set demote_timeout >= hook.timeout; the running daemon keeps its
    // peers until a restart, so the merged config would let the migrate hook give up first.
    const next = parseConfig('hook:\n  timeout: 90s\nmigration:\n  demote_timeout: 100s\n', FILE);
    assert.throws(
      () => planReload(RUNNING, next, FILE),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(error.file, FILE);
        assert.equal(error.issues.length, 1);
        assert.match(error.issues[0]!, /^migration\.demote_timeout: must be shorter than hook\.timeout \(90s\)/);
        assert.match(error.issues[0]!, /in the configuration the reload would run \(with .*peers\.hosts.* kept at the running value until a restart\)/);
        return true;
      },
    );
  });

  test('accepts the same file when the running config has no peers', () => {
    const running = parseConfig('', 'running.yaml');
    const next = parseConfig('hook:\n  timeout: 90s\nmigration:\n  demote_timeout: 100s\n', FILE);
    assert.equal(planReload(running, next, FILE).config.migration.demoteTimeoutMs, 100_000);
  });
});
