import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DomainXmlError, parseDomainXml } from '../../src/domain/disks.js';
import { DomainXmlParser, parseDomainXmlAsync } from '../../src/domain/parse-async.js';

const UUID = '5a5a0000-0000-4000-8000-00000000000a';

/** A domain whose <metadata> holds about `bytes` of an application's own elements. */
function domainWithMetadata(bytes: number, name = 'big1'): string {
  const item = (i: number) => `    <app:item key='k${i}' note='an application keeps its own notes here'>value ${i} &amp; more</app:item>\n`;
  const items: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const line = item(i);
    items.push(line);
    size += line.length;
  }
  return `<domain type='kvm'>
  <name>${name}</name>
  <uuid>${UUID}</uuid>
  <metadata>
   <app:notes xmlns:app='http://example.org/app/1'>
${items.join('')}   </app:notes>
  </metadata>
  <devices>
    <disk type='block' device='disk'><source dev='/dev/vg0/lv1'/><target dev='vda' bus='virtio'/></disk>
    <disk type='block' device='disk'><source dev='/dev/vg0/shared1'/><target dev='vdb' bus='virtio'/><shareable/></disk>
  </devices>
</domain>
`;
}

/** Runs work while a 10 ms interval ticks on this thread; returns the longest gap between ticks. */
async function longestTickGap<T>(work: () => Promise<T>): Promise<{ value: T; gapMs: number }> {
  let last = performance.now();
  let gapMs = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    gapMs = Math.max(gapMs, now - last);
    last = now;
  }, 10);
  try {
    // Let the ticker start before the work, so a stall at the very start is measured too.
    await new Promise((r) => setTimeout(r, 30));
    last = performance.now();
    const value = await work();
    gapMs = Math.max(gapMs, performance.now() - last);
    return { value, gapMs };
  } finally {
    clearInterval(ticker);
  }
}

describe('parseDomainXmlAsync: large XML does not stall the event loop', () => {
  const parsers: DomainXmlParser[] = [];
  after(async () => {
    for (const p of parsers) await p.close();
  });

  test('a 10 MB <metadata> is parsed off the event loop, with the same result as in place', async (t) => {
    const xml = domainWithMetadata(10 * 1024 * 1024);
    assert.ok(xml.length > 10 * 1024 * 1024);
    const inPlace = await longestTickGap(async () => parseDomainXml(xml));
    const offLoop = await longestTickGap(() => parseDomainXmlAsync(xml));
    assert.deepEqual(offLoop.value, inPlace.value);
    assert.deepEqual(
      offLoop.value.disks.map((d) => [d.source, d.mode]),
      [
        [{ kind: 'path', path: '/dev/vg0/lv1' }, 'ex'],
        [{ kind: 'path', path: '/dev/vg0/shared1' }, 'sh'],
      ],
    );
    const ratio = offLoop.gapMs / inPlace.gapMs;
    t.diagnostic(`longest tick gap: worker ${offLoop.gapMs.toFixed(0)} ms, in place ${inPlace.gapMs.toFixed(0)} ms`);
    assert.ok(
      ratio < 0.2,
      `longest gap between 10 ms ticks: ${offLoop.gapMs.toFixed(0)} ms while parsing in a worker vs ${inPlace.gapMs.toFixed(0)} ms in place (ratio ${ratio.toFixed(2)})`,
    );
  });

  test('small XML is parsed in place: no worker is started', async () => {
    const parser = new DomainXmlParser({ inPlaceLimit: 64 * 1024 });
    parsers.push(parser);
    const xml = domainWithMetadata(4 * 1024);
    assert.deepEqual(await parser.parse(xml), parseDomainXml(xml));
    assert.equal(parser.workerCount, 0);
  });

  test('a parse error from the worker is a DomainXmlError with the in-place message', async () => {
    const parser = new DomainXmlParser({ inPlaceLimit: 1024 });
    parsers.push(parser);
    const broken = domainWithMetadata(8 * 1024).replace('</app:notes>', '');
    let expected = '';
    assert.throws(() => parseDomainXml(broken), (err: unknown) => err instanceof DomainXmlError && Boolean((expected = err.message)));
    await assert.rejects(parser.parse(broken), (err: unknown) => err instanceof DomainXmlError && err.message === expected);
  });

  test('a parse past the timeout is stopped with an error naming the domain; the same XML parses within a sane timeout', async () => {
    const parser = new DomainXmlParser({ inPlaceLimit: 1024, timeoutMs: 1 });
    parsers.push(parser);
    const xml = domainWithMetadata(2 * 1024 * 1024, 'slow-guest');
    await assert.rejects(parser.parse(xml), (err: unknown) => err instanceof DomainXmlError && /domain XML of "slow-guest" \(2\.0 MB\).*longer than 1 ms.*stopped/.test(err.message));
    assert.equal(parser.workerCount, 0, 'the timed-out worker was terminated');
    const patient = new DomainXmlParser({ inPlaceLimit: 1024, timeoutMs: 30_000 });
    parsers.push(patient);
    assert.equal((await patient.parse(xml)).name, 'slow-guest');
  });

  test('jobs beyond the pool size wait for a free worker and all finish', async () => {
    const parser = new DomainXmlParser({ inPlaceLimit: 1024, maxWorkers: 1 });
    parsers.push(parser);
    const names = ['a1', 'a2', 'a3'];
    const results = await Promise.all(names.map((n) => parser.parse(domainWithMetadata(16 * 1024, n))));
    assert.deepEqual(results.map((r) => r.name), names);
    assert.ok(parser.workerCount <= 1);
  });
});
