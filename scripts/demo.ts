/**
 * The guided tour behind `npm run demo`: one simulated hypervisor on an embedded default (a private
 * D-Bus, the real libvirt-dbus with its Test driver, the LVM simulator standing in for a shared VG
 * under lvmlockd, and the daemon), driven the way libvirtd drives its hook.
 */
import { setupSharedVg, heldBy } from '../test/harness/cluster.js';
import { domainXml, TestHost } from '../test/harness/host.js';
import { waitFor } from '../test/harness/process.js';

const NEIGHBOUR = 2;

function say(text: string): void {
  process.stdout.write(`\n== ${text}\n`);
}

async function showStatus(host: TestHost): Promise<void> {
  const r = await host.cli('status');
  process.stdout.write(r.stdout.replace(/^/gm, '   '));
}

async function main(): Promise<void> {
  const host = await TestHost.create();
  try {
    say('cluster: shared VG vg0 (sanlock) seen by this host (host_id 1) and a neighbour (host_id 2)');
    await setupSharedVg(host, [host.hostId, NEIGHBOUR]);
    await host.startLibvirt();
    await host.startDaemon();
    await showStatus(host);

    const web = domainXml('web', '0d0d0000-0000-4000-8000-000000000001', [{ dev: '/dev/vg0/lv1' }, { dev: '/dev/vg0/lv2' }, { dev: '/dev/vg0/shared1', shareable: true }]);
    say('start "web" (disks vg0/lv1, vg0/lv2, shareable vg0/shared1): libvirt runs the prepare hook before QEMU');
    const started = await host.startDomainWithHook('web', web);
    process.stdout.write(`   hook prepare: exit ${started.rc} in ${Math.round(started.ms)} ms\n`);
    await showStatus(host);

    say('the neighbour host takes vg0/lv3 exclusively; then "db" tries to start on vg0/lv3 here');
    await host.lvmAs(NEIGHBOUR, 'lvchange', '-aey', 'vg0/lv3');
    const db = domainXml('db', '0d0d0000-0000-4000-8000-000000000002', [{ dev: '/dev/vg0/lv3' }]);
    const refused = await host.startDomainWithHook('db', db);
    process.stdout.write(`   hook prepare: exit ${refused.rc}; libvirt fails the start with:\n   ${refused.stderr.trim()}\n`);

    say('destroy "web": the Stopped event releases its LVs');
    await host.destroyDomain('0d0d0000-0000-4000-8000-000000000001');
    await waitFor('web released', async () => (await heldBy(host)).size === 0, 10_000);
    await showStatus(host);

    say('audit trail of vg0/lv1 (journalctl -u virt-lvmlockd | grep LV=vg0/lv1)');
    for (const line of host.daemonLog().split('\n')) if (line.includes('LV=vg0/lv1 ')) process.stdout.write(`   ${line}\n`);
  } finally {
    await host.dispose();
  }
  say('done: every process of the tour was stopped');
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
