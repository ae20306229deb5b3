/**
 * The packaged daemon under systemd: the Type=dbus unit becomes active (systemd saw it take its
 * bus name) with the journal's ready line on both hosts, and `systemctl reload` applies a changed
 * log level but refuses an invalid file while the old configuration keeps running.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Bed } from './bed.js';
import { HOSTS } from './guest-files.js';
import type { Hypervisor } from './hypervisor.js';
import { CONFIG_PATH, daemonConfigYaml, identity } from './stack.js';

// A Type=dbus start takes seconds; past this the unit is failing, not slow.
const ACTIVE_WAIT_MS = 90_000;
const QUICK_MS = 60_000;

/** Polls `systemctl is-active virt-lvmlockd` until active or 90 s; returns the last state. */
export async function waitActive(hv: Hypervisor): Promise<string> {
  const deadline = Date.now() + ACTIVE_WAIT_MS;
  let state = '';
  // Restart=on-failure may be between two tries: poll until active or the deadline.
  while (Date.now() < deadline) {
    state = (await hv.run(['systemctl', 'is-active', 'virt-lvmlockd'], { timeoutMs: QUICK_MS })).stdout.trim();
    if (state === 'active') break;
    await sleep(2000);
  }
  return state;
}

/** The daemon's journal lines after a marker line the test wrote with logger(1). */
async function journalSince(hv: Hypervisor, marker: string): Promise<string[]> {
  const all = await hv.mustRun(['journalctl', '--no-pager', '-o', 'cat', 'SYSLOG_IDENTIFIER=cluster-test', '+', '_SYSTEMD_UNIT=virt-lvmlockd.service'], { timeoutMs: QUICK_MS });
  const lines = all.split('\n');
  const at = lines.lastIndexOf(marker);
  return at < 0 ? [] : lines.slice(at + 1);
}

export async function mark(hv: Hypervisor, text: string): Promise<string> {
  const marker = `cluster-test mark ${text} ${Date.now()}`;
  await hv.mustRun(['logger', '-t', 'cluster-test', marker], { timeoutMs: QUICK_MS });
  return marker;
}

export function systemdTests(bed: () => Bed): void {
  for (const { name } of HOSTS) {
    test(`${name}: systemctl is-active virt-lvmlockd reaches active, and the unit is Type=dbus`, async () => {
      const hv = bed().host(name);
      const state = await waitActive(hv);
      if (state !== 'active') {
        const status = await hv.run(['systemctl', 'status', '--no-pager', '-n', '30', 'virt-lvmlockd'], { timeoutMs: QUICK_MS });
        assert.fail(`${name}: virt-lvmlockd is "${state}" after ${ACTIVE_WAIT_MS / 1000} s:\n${status.stdout}`);
      }
      const type = (await hv.mustRun(['systemctl', 'show', '-P', 'Type', 'virt-lvmlockd'], { timeoutMs: QUICK_MS })).trim();
      assert.equal(type, 'dbus');
    });

    test(`${name}: journalctl -u virt-lvmlockd shows the ready line at priority notice`, async () => {
      const hv = bed().host(name);
      const journal = await bed().journal(hv, ['-p', 'notice']);
      const ready = journal.split('\n').find((l) => l.includes(`virt-lvmlockd ${bed().prep.version} ready on`));
      const tail = journal.trim().split('\n').slice(-20).join('\n');
      assert.ok(ready, `${name}: no "virt-lvmlockd ${bed().prep.version} ready on" line at notice or above; its last lines:\n${tail}`);
      assert.match(ready, /ready on system bus, libvirt connection \/org\/libvirt\/QEMU/);
    });
  }

  test('hvA: systemctl reload applies a new log level, and refuses an invalid file while the old config runs on', async () => {
    const hv = bed().a;
    const [ida, idb] = [identity(bed().a, 0), identity(bed().b, 1)];
    const pid = async () => (await hv.mustRun(['systemctl', 'show', '-P', 'MainPID', 'virt-lvmlockd'], { timeoutMs: QUICK_MS })).trim();
    const before = await pid();
    try {
      let marker = await mark(hv, 'reload-level');
      await hv.put(CONFIG_PATH, Buffer.from(daemonConfigYaml(ida, [idb], 'info')));
      await hv.mustRun(['systemctl', 'reload', 'virt-lvmlockd'], { timeoutMs: QUICK_MS });
      let lines = await linesAfter(hv, marker, (l) => l.includes('reloaded'));
      assert.ok(lines.some((l) => /reloaded .*applied: log\.level/.test(l)), `no "reloaded ... applied: log.level" line after the reload:\n${lines.join('\n')}`);

      marker = await mark(hv, 'reload-invalid');
      await hv.put(CONFIG_PATH, Buffer.from('log:\n  level: loud\n'));
      // ExecReload only sends SIGHUP: systemctl itself succeeds, the daemon refuses and says so.
      await hv.mustRun(['systemctl', 'reload', 'virt-lvmlockd'], { timeoutMs: QUICK_MS });
      lines = await linesAfter(hv, marker, (l) => l.includes('reload failed'));
      const failed = lines.find((l) => l.includes('reload failed, keeping the old configuration'));
      assert.ok(failed, `no "reload failed, keeping the old configuration" line:\n${lines.join('\n')}`);
      assert.match(failed, /log\.level/);
      const err = await hv.mustRun(['journalctl', '-u', 'virt-lvmlockd', '-p', 'err', '--no-pager', '-o', 'cat'], { timeoutMs: QUICK_MS });
      assert.ok(err.includes(failed), 'the refused reload is not logged at priority err');
      assert.equal(await waitActive(hv), 'active');
      assert.equal(await pid(), before, 'the daemon restarted instead of keeping the old configuration');
    } finally {
      await hv.put(CONFIG_PATH, Buffer.from(daemonConfigYaml(ida, [idb])));
      await hv.mustRun(['systemctl', 'reload', 'virt-lvmlockd'], { timeoutMs: QUICK_MS });
    }
  });
}

/** The journal lines after marker, once one matches (or after 10 s, for the assertion to show). */
export async function linesAfter(hv: Hypervisor, marker: string, match: (line: string) => boolean, waitMs = 10_000): Promise<string[]> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const lines = await journalSince(hv, marker);
    if (lines.some(match) || Date.now() > deadline) return lines;
    await sleep(500);
  }
}
