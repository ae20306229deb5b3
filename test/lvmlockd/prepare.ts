/**
 * What every lvmlockd test file does first: find QEMU and build (or reuse) the guest image. When
 * either is impossible here the tests are skipped, loudly, with the reason.
 */
import { test } from 'node:test';
import { ensureGuestImage, type GuestImage } from './image.js';
import { findQemu, type QemuTools } from './testbed.js';

export interface Prepared {
  image: GuestImage;
  tools: QemuTools;
}

export function say(line: string): void {
  // stderr: node's test runner passes it through as it comes, whatever the reporter.
  process.stderr.write(`[lvmlockd-testbed] ${line}\n`);
}

/** The sanlock I/O timeout for lvmlockd -o, from LVMLOCKD_TESTBED_IO_TIMEOUT; undefined = lvmlockd's default (10 s). */
export function ioTimeoutFromEnv(fallback?: number): number | undefined {
  const raw = process.env.LVMLOCKD_TESTBED_IO_TIMEOUT;
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 300) throw new Error(`LVMLOCKD_TESTBED_IO_TIMEOUT=${raw}: expected whole seconds, 1-300`);
  return n;
}

export async function prepare(): Promise<Prepared | { skip: string }> {
  const tools = await findQemu();
  if ('missing' in tools) return { skip: tools.missing };
  try {
    const image = await ensureGuestImage(say);
    // A build reports itself; a cache hit is said here.
    if (!image.built) say(`guest image from cache in ${(image.ms / 1000).toFixed(1)} s (${image.key.trim().split('\n').join('; ')})`);
    return { image, tools };
  } catch (err) {
    return { skip: `the guest image could not be built: ${(err as Error).message}` };
  }
}

/** Registers one test that is skipped with the reason, and says it on stderr. */
export function skipLoudly(title: string, reason: string): void {
  say(`SKIPPED ${title}: ${reason}`);
  test(title, (t) => {
    t.skip(reason);
  });
}
