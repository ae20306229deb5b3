import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import { domainXml, TestHost } from '../harness/host.js';
import { setupSharedVg } from '../harness/cluster.js';
import { waitFor } from '../harness/process.js';

const UUID1 = '6f1a0000-0000-4000-8000-000000000071';

/** A port free right now on 127.0.0.1 (the config refuses port 0, so the test picks one). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

function scrape(port: number, path = '/metrics'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from 127.0.0.1:${port}${path} within 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function hostWithMetrics(listen: string): Promise<TestHost> {
  const host = await TestHost.create();
  await host.writeConfig(host.defaultConfig(`metrics:\n  listen: "${listen}"\n`));
  await setupSharedVg(host);
  await host.startLibvirt();
  await host.startDaemon();
  return host;
}

describe('metrics: the daemon serves a Prometheus exposition on metrics.listen', () => {
  let host: TestHost | undefined;
  let blocker: Server | undefined;
  afterEach(async () => {
    await host?.dispose();
    host = undefined;
    if (blocker) await new Promise<void>((resolve) => blocker!.close(() => resolve()));
    blocker = undefined;
  });

  test('a start through the hook shows as a transition, a hook latency observation and a lock held', async () => {
    const port = await freePort();
    host = await hostWithMetrics(`127.0.0.1:${port}`);
    const xml = domainXml('vm1', UUID1, [{ dev: '/dev/vg0/lv1' }]);
    const hook = await host.startDomainWithHook('vm1', xml);
    assert.equal(hook.rc, 0, hook.stderr);

    const res = await scrape(port);
    assert.equal(res.status, 200);
    assert.match(res.type, /^text\/plain; version=0\.0\.4/);
    assert.equal(sample(res.body, 'virt_lvmlockd_transitions_total{result="ok",cause="hook_prepare",to="ex"}'), 1, res.body);
    assert.equal(sample(res.body, 'virt_lvmlockd_hook_duration_seconds_count{op="prepare",verdict="allowed"}'), 1, res.body);
    assert.equal(sample(res.body, 'virt_lvmlockd_locks_held{mode="ex"}'), 1, res.body);
    // The startup reconcile ran before the daemon took its bus name.
    assert.ok((sample(res.body, 'virt_lvmlockd_reconcile_duration_seconds_count') ?? 0) >= 1, res.body);
    assert.equal((await scrape(port, '/')).status, 404);
  });

  test('a port already taken is logged with the address and the reason, and the daemon runs on without metrics', async () => {
    const port = await freePort();
    blocker = createServer();
    await new Promise<void>((resolve) => blocker!.listen(port, '127.0.0.1', () => resolve()));
    host = await hostWithMetrics(`127.0.0.1:${port}`);
    await waitFor('the metrics listen error in the log', async () => host!.daemonLog().includes(`cannot serve metrics on 127.0.0.1:${port}`), 5000);
    assert.match(host.daemonLog(), new RegExp(`metrics\\.listen: cannot serve metrics on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE.*; running without metrics`));
    const xml = domainXml('vm1', UUID1, [{ dev: '/dev/vg0/lv1' }]);
    assert.equal((await host.startDomainWithHook('vm1', xml)).rc, 0);
  });
});
