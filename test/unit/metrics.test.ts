import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, createServer, request } from 'node:http';
import { ConfigError, defaultConfig, parseConfig } from '../../src/config/index.js';
import type { LockMode } from '../../src/locks/lv.js';
import type { Logger } from '../../src/log/logger.js';
import { CAUSE_LABELS, causeLabel, hookOpLabel, peerReachable } from '../../src/metrics/labels.js';
import { PrometheusMetrics } from '../../src/metrics/prometheus.js';
import { MetricsServer, parseListen } from '../../src/metrics/server.js';

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const log = (level: string) => (message: string | (() => string)) => {
    lines.push(`${level}: ${typeof message === 'function' ? message() : message}`);
  };
  return {
    lines,
    error: log('error'),
    warning: log('warning'),
    notice: log('notice'),
    info: log('info'),
    debug: log('debug'),
    setLevel: () => undefined,
    close: async () => undefined,
  };
}

/** The value of one series in an exposition, or undefined when the series is absent. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

describe('cause labels', () => {
  // The cause texts as the engine writes them (transitions, lifecycle, handoff, events, reconcile).
  const cases: Array<[string, string]> = [
    ['hook prepare', 'hook_prepare'],
    ['hook migrate', 'hook_migrate'],
    ['hook migrate (after hv2 demoted)', 'hook_migrate'],
    ['hook release end', 'hook_release'],
    ['hook bogus', 'other'],
    ['rollback of failed prepare', 'rollback'],
    ['reconcile (startup)', 'reconcile'],
    ['reconcile (timer): domain gone', 'reconcile'],
    ['reconcile (timer): no local domain uses it', 'reconcile'],
    ['reconcile: migration over', 'reconcile'],
    ['device virtio-disk1 added', 'device_added'],
    ['device ua-data removed', 'device_removed'],
    ['demote requested by hv2', 'peer_demote'],
    ['migrate-out requested by the admin', 'admin'],
    ['settle requested by the admin', 'admin'],
    ['settle: not running here', 'admin'],
    ['hv2.example.org released', 'peer_released'],
    ['hv2 released (retry)', 'peer_released'],
    ['migration to hv2 failed', 'migration_failed'],
    ['migration to hv2 failed (retry)', 'migration_failed'],
    ['demotion failed', 'demotion_failed'],
    ['incoming migration abandoned', 'incoming_abandoned'],
    ['incoming migration not carried out: a new start came', 'incoming_abandoned'],
    ['migration over (its end event was missed)', 'migration_ended'],
    ['its outgoing migration ended while it was demoted', 'migration_ended'],
    ['no migration job after demotion', 'migration_ended'],
    ['Resumed/Migrated', 'event'],
    ['Resumed/Postcopy (retry)', 'event'],
    ['stopped (Stopped/Destroyed)', 'event'],
    ['offline migration (Stopped/Migrated)', 'event'],
    ['something nobody foresaw', 'other'],
  ];
  for (const [cause, label] of cases) {
    test(`${JSON.stringify(cause)} counts as ${label}`, () => assert.equal(causeLabel(cause), label));
  }

  test('every label it gives is one of the documented ones', () => {
    for (const [cause] of cases) assert.ok((CAUSE_LABELS as readonly string[]).includes(causeLabel(cause)), cause);
  });

  test('a hook op libvirt does not have becomes "unknown"', () => {
    assert.equal(hookOpLabel('prepare'), 'prepare');
    assert.equal(hookOpLabel('$(reboot)'), 'unknown');
  });

  test('a peer that answered anything is reachable; no answer is not', () => {
    assert.equal(peerReachable({ peer: 'hv2', ok: false, status: 403, error: 'not allowed' }), true);
    assert.equal(peerReachable({ peer: 'hv2', ok: true, status: 200 }), true);
    assert.equal(peerReachable({ peer: 'hv2', ok: false, error: 'connect ECONNREFUSED 192.0.2.2:16515' }), false);
  });
});

describe('the Prometheus exposition', () => {
  test('shows what the engine reported, with bounded labels', async () => {
    const metrics = new PrometheusMetrics({ held: () => [] });
    metrics.transition('ok', 'hook prepare', 'ex');
    metrics.transition('ok', 'hook prepare', 'ex');
    metrics.transition('failed', 'device virtio-disk7 added', 'ex');
    metrics.hookAnswered('prepare', 'allowed', 40);
    metrics.hookAnswered('prepare', 'refused', 5600);
    metrics.handoffDone('ok', 1500);
    metrics.reconciled(120, 2);
    metrics.reconciled(80, 0);
    metrics.peerReply('hv2', true);
    metrics.peerReply('hv3', true);
    metrics.peerReply('hv3', false);
    const text = await metrics.exposition();

    assert.equal(sample(text, 'virt_lvmlockd_transitions_total{result="ok",cause="hook_prepare",to="ex"}'), 2);
    assert.equal(sample(text, 'virt_lvmlockd_transitions_total{result="failed",cause="device_added",to="ex"}'), 1);
    assert.doesNotMatch(text, /virtio-disk7/);
    assert.equal(sample(text, 'virt_lvmlockd_hook_duration_seconds_count{op="prepare",verdict="allowed"}'), 1);
    assert.equal(sample(text, 'virt_lvmlockd_hook_duration_seconds_sum{op="prepare",verdict="refused"}'), 5.6);
    // 5.6 s falls in the 10 s bucket, not the 5 s one.
    assert.equal(sample(text, 'virt_lvmlockd_hook_duration_seconds_bucket{le="5",op="prepare",verdict="refused"}'), 0);
    assert.equal(sample(text, 'virt_lvmlockd_hook_duration_seconds_bucket{le="10",op="prepare",verdict="refused"}'), 1);
    assert.equal(sample(text, 'virt_lvmlockd_handoff_duration_seconds_sum{result="ok"}'), 1.5);
    assert.equal(sample(text, 'virt_lvmlockd_reconcile_duration_seconds_count'), 2);
    assert.equal(sample(text, 'virt_lvmlockd_reconcile_problems_total'), 2);
    assert.equal(sample(text, 'virt_lvmlockd_reconcile_last_problems'), 0);
    assert.equal(sample(text, 'virt_lvmlockd_peer_reachable{peer="hv2"}'), 1);
    assert.equal(sample(text, 'virt_lvmlockd_peer_reachable{peer="hv3"}'), 0);
    assert.match(text, /^# TYPE virt_lvmlockd_hook_duration_seconds histogram$/m);
  });

  test('counts the locks held by mode at each scrape, from the table as it is then', async () => {
    const held: Array<{ mode: LockMode }> = [{ mode: 'ex' }, { mode: 'ex' }, { mode: 'sh' }];
    const metrics = new PrometheusMetrics({ held: () => held });
    let text = await metrics.exposition();
    assert.equal(sample(text, 'virt_lvmlockd_locks_held{mode="ex"}'), 2);
    assert.equal(sample(text, 'virt_lvmlockd_locks_held{mode="sh"}'), 1);
    held.splice(0, 3, { mode: 'sh' });
    text = await metrics.exposition();
    assert.equal(sample(text, 'virt_lvmlockd_locks_held{mode="ex"}'), 0);
    assert.equal(sample(text, 'virt_lvmlockd_locks_held{mode="sh"}'), 1);
  });

  test('a peer never asked has no reachability series, rather than a guess', async () => {
    const text = await new PrometheusMetrics({ held: () => [] }).exposition();
    assert.doesNotMatch(text, /^virt_lvmlockd_peer_reachable\{/m);
  });

  test('two instances keep separate series (no global registry)', async () => {
    const a = new PrometheusMetrics({ held: () => [] });
    const b = new PrometheusMetrics({ held: () => [] });
    a.transition('ok', 'hook prepare', 'ex');
    assert.equal(sample(await b.exposition(), 'virt_lvmlockd_transitions_total{result="ok",cause="hook_prepare",to="ex"}'), undefined);
  });
});

/** One request on a connection of its own, unless `agent` keeps one alive. */
function get(port: number, path: string, method = 'GET', agent: Agent | false = false): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent, timeout: 5000 }, (res) => {
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

describe('parseListen', () => {
  test('reads address:port and [v6]:port, and refuses anything else', () => {
    assert.deepEqual(parseListen('127.0.0.1:9716'), { host: '127.0.0.1', port: 9716 });
    assert.deepEqual(parseListen('[::1]:9716'), { host: '::1', port: 9716 });
    assert.deepEqual(parseListen('localhost:0'), { host: 'localhost', port: 0 });
    assert.equal(parseListen('127.0.0.1'), undefined);
    assert.equal(parseListen('127.0.0.1:99999'), undefined);
    assert.equal(parseListen(''), undefined);
  });
});

describe('the metrics server', () => {
  let server: MetricsServer | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  test('answers GET /metrics with the exposition in the Prometheus text format', async () => {
    const metrics = new PrometheusMetrics({ held: () => [{ mode: 'ex' }] });
    metrics.transition('ok', 'hook prepare', 'ex');
    server = new MetricsServer(metrics, recordingLogger());
    await server.start('127.0.0.1:0');
    const res = await get(server.port!, '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.type, /^text\/plain; version=0\.0\.4/);
    assert.equal(sample(res.body, 'virt_lvmlockd_transitions_total{result="ok",cause="hook_prepare",to="ex"}'), 1);
    assert.equal(sample(res.body, 'virt_lvmlockd_locks_held{mode="ex"}'), 1);
    // A query string (some scrapers add one) does not change the path.
    assert.equal((await get(server.port!, '/metrics?x=1')).status, 200);
  });

  test('any other path is 404, and another method on /metrics is 405', async () => {
    server = new MetricsServer(new PrometheusMetrics({ held: () => [] }), recordingLogger());
    await server.start('127.0.0.1:0');
    for (const path of ['/', '/metrics/', '/status', '/../metrics']) {
      const res = await get(server.port!, path);
      assert.equal(res.status, 404, path);
      assert.doesNotMatch(res.body, /virt_lvmlockd_/, path);
    }
    assert.equal((await get(server.port!, '/metrics', 'POST')).status, 405);
  });

  test('a failed scrape is logged and answered 500; the server goes on serving', async () => {
    const logger = recordingLogger();
    let fail = true;
    const source = {
      contentType: 'text/plain; version=0.0.4; charset=utf-8',
      exposition: async () => {
        if (fail) throw new Error('collector exploded');
        return 'ok 1\n';
      },
    };
    server = new MetricsServer(source, logger);
    await server.start('127.0.0.1:0');
    const res = await get(server.port!, '/metrics');
    assert.equal(res.status, 500);
    assert.doesNotMatch(res.body, /exploded/);
    assert.ok(logger.lines.some((l) => l === 'error: metrics: a scrape failed: collector exploded'), logger.lines.join('\n'));
    fail = false;
    assert.equal((await get(server.port!, '/metrics')).body, 'ok 1\n');
  });

  test('a port already taken is an error naming the address and the reason', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    const port = (blocker.address() as { port: number }).port;
    try {
      server = new MetricsServer(new PrometheusMetrics({ held: () => [] }), recordingLogger());
      await assert.rejects(server.start(`127.0.0.1:${port}`), new RegExp(`^Error: cannot serve metrics on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
      await assert.rejects(server.start('nowhere'), /cannot serve metrics on "nowhere": not address:port/);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  test('stop() closes the port, also with a keep-alive connection open', async () => {
    server = new MetricsServer(new PrometheusMetrics({ held: () => [] }), recordingLogger());
    await server.start('127.0.0.1:0');
    const port = server.port!;
    const keepAlive = new Agent({ keepAlive: true });
    try {
      assert.equal((await get(port, '/metrics', 'GET', keepAlive)).status, 200);
      const started = Date.now();
      await server.stop();
      server = undefined;
      // An idle keep-alive connection must not hold the stop up to its grace.
      assert.ok(Date.now() - started < 1500, `stop() took ${Date.now() - started} ms`);
      await assert.rejects(get(port, '/metrics'), /ECONNREFUSED/);
    } finally {
      keepAlive.destroy();
    }
  });
});

describe('the metrics.listen key', () => {
  const issues = (text: string): string[] => {
    try {
      parseConfig(text, 'test.yaml');
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.issues;
    }
    return [];
  };

  test('is off by default and takes an address:port', () => {
    assert.equal(defaultConfig().metrics?.listen, '');
    assert.equal(parseConfig('metrics:\n  listen: "127.0.0.1:9716"\n', 'test.yaml').metrics?.listen, '127.0.0.1:9716');
  });

  test('a value that is not address:port is refused with a hint for this key', () => {
    assert.deepEqual(issues('metrics:\n  listen: "9716"\n'), [
      'metrics.listen: "9716" is not address:port; write an address and port like 192.0.2.1:9716 or [2001:db8::1]:9716, or "" for no metrics endpoint',
    ]);
  });

  test('the address of the peer server is refused', () => {
    assert.deepEqual(issues('peers:\n  listen: "192.0.2.1:16515"\nmetrics:\n  listen: "192.0.2.1:16515"\n'), [
      'metrics.listen: 192.0.2.1:16515 is also peers.listen; the metrics endpoint and the peer server need different ports',
    ]);
  });
});
