import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, parseDuration } from '../../src/config/duration.js';

describe('parseDuration', () => {
  test('reads each unit as milliseconds', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('2m'), 120_000);
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.equal(parseDuration('0s'), 0);
  });

  test('reads decimals exactly', () => {
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration('1.1s'), 1100);
    assert.equal(parseDuration('0.5h'), 1_800_000);
    assert.equal(parseDuration('1.001s'), 1001);
    assert.equal(parseDuration('2.50m'), 150_000);
  });

  test('ignores surrounding white space', () => {
    assert.equal(parseDuration(' 30s\n'), 30_000);
  });

  test('refuses a bare number and shows the accepted forms', () => {
    assert.throws(() => parseDuration('30'), {
      message: '"30" is not a duration; write it like 30s or 500ms (units ms, s, m, h; 1.5s also works)',
    });
  });

  for (const text of ['', 's', '30S', '-1s', '1d', '1m30s', '30 s', '.5s', '1.s', '1e3ms', 'thirty seconds']) {
    test(`refuses ${JSON.stringify(text)}, naming it and the accepted forms`, () => {
      assert.throws(
        () => parseDuration(text),
        (error: Error) => error.message.includes(JSON.stringify(text)) && error.message.includes('write it like 30s or 500ms'),
      );
    });
  }

  test('refuses a fraction of a millisecond', () => {
    assert.throws(() => parseDuration('1.5ms'), /"1\.5ms" is not a whole number of milliseconds/);
    assert.throws(() => parseDuration('1.0001s'), /not a whole number of milliseconds/);
  });
});

describe('formatDuration', () => {
  test('uses the largest unit that divides evenly', () => {
    assert.equal(formatDuration(0), '0s');
    assert.equal(formatDuration(500), '500ms');
    assert.equal(formatDuration(1000), '1s');
    assert.equal(formatDuration(90_000), '90s');
    assert.equal(formatDuration(60_000), '1m');
    assert.equal(formatDuration(5_400_000), '90m');
    assert.equal(formatDuration(7_200_000), '2h');
  });

  test('writes seconds with a fraction above one second', () => {
    assert.equal(formatDuration(1500), '1.5s');
    assert.equal(formatDuration(1001), '1.001s');
    assert.equal(formatDuration(1010), '1.01s');
    assert.equal(formatDuration(61_250), '61.25s');
  });

  test('parseDuration reads back what formatDuration writes', () => {
    const samples = [1, 7, 999, 1000, 1001, 1999, 12_345, 59_999, 60_000, 86_399_999, 3_600_000 * 25, 2 ** 31 - 1];
    for (const ms of samples) assert.equal(parseDuration(formatDuration(ms)), ms, `for ${ms} ms`);
  });

  test('refuses what is not a whole, non-negative number of milliseconds', () => {
    for (const ms of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => formatDuration(ms), RangeError, `for ${ms}`);
    }
  });
});
