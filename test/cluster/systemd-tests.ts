/**
 * The packaged daemon on two real hypervisors: installed with apt from the project's .deb, its
 * Type=dbus unit becomes active (systemd saw it take its bus name) and the journal has its ready
 * line, on both hosts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster } from './cluster.js';
import { HOSTS } from './guest-files.js';
import { prepare, say, skipLoudly } from './prepare.js';

const TITLE = 'virt-lvmlockd under systemd on two hypervisors';
const SETUP_MS = 20 * 60_000;
// A Type=dbus start takes seconds; past this the unit is failing, not slow.
const ACTIVE_WAIT_MS = 90_000;

const prep = await prepare();
if ('skip' in prep) {
  skipLoudly(TITLE, prep.skip);
} else {
  describe(TITLE, { timeout: SETUP_MS + 10 * 60_000 }, () => {
    let cluster: Cluster | undefined;

    before(async () => {
      const started = await Cluster.start(prep.qemu, prep.image, say);
      cluster = started.cluster;
      for (const b of started.boots) say(`${b.host} booted (${b.state}) after ${(b.ms / 1000).toFixed(1)} s${b.failed ? `; failed units: ${b.failed}` : ''}`);
      const ms = await cluster.installDeb(prep.deb);
      say(`apt-get install of ${prep.deb.split('/').at(-1)}: ${ms.map((m, i) => `${HOSTS[i]!.name} ${(m / 1000).toFixed(1)} s`).join(', ')}`);
    }, { timeout: SETUP_MS });

    after(async () => {
      await cluster?.stop();
    });

    const hv = (name: string) => {
      const found = cluster?.hosts.find((h) => h.host.name === name);
      if (!found) throw new Error(`${name} is not running (set-up failed)`);
      return found;
    };

    for (const { name } of HOSTS) {
      test(`${name}: systemctl is-active virt-lvmlockd reaches active`, async () => {
        const deadline = Date.now() + ACTIVE_WAIT_MS;
        let state = '';
        // Restart=on-failure may be between two tries: poll until active or the deadline.
        while (Date.now() < deadline) {
          state = (await hv(name).run(['systemctl', 'is-active', 'virt-lvmlockd'], { timeoutMs: 30_000 })).stdout.trim();
          if (state === 'active') break;
          await sleep(2000);
        }
        if (state !== 'active') {
          const status = await hv(name).run(['systemctl', 'status', '--no-pager', '-n', '30', 'virt-lvmlockd'], { timeoutMs: 30_000 });
          assert.fail(`${name}: virt-lvmlockd is "${state}" after ${ACTIVE_WAIT_MS / 1000} s:\n${status.stdout}`);
        }
        const type = (await hv(name).mustRun(['systemctl', 'show', '-P', 'Type', 'virt-lvmlockd'], { timeoutMs: 30_000 })).trim();
        assert.equal(type, 'dbus');
      });

      test(`${name}: journalctl -u virt-lvmlockd shows the ready line`, async () => {
        const journal = await hv(name).mustRun(['journalctl', '-u', 'virt-lvmlockd', '--no-pager', '-o', 'cat'], { timeoutMs: 60_000 });
        const ready = journal.split('\n').find((l) => l.includes(`virt-lvmlockd ${prep.version} ready on`));
        const tail = journal.trim().split('\n').slice(-20).join('\n');
        assert.ok(ready, `${name}: no "virt-lvmlockd ${prep.version} ready on" line in the journal; its last lines:\n${tail}`);
        assert.match(ready, /ready on system bus, libvirt connection \/org\/libvirt\/QEMU/);
      });
    }
  });
}
