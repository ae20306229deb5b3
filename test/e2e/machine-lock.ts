/**
 * One e2e cluster at a time on a machine. Clusters share mount points of the root filesystem
 * (/run/libvirt ...), which the last one removes; two test files run in parallel by a runner
 * without --test-concurrency=1 would pull them from under each other. A lock file holding the
 * owner's PID serializes them; the lock of a process that died is taken over.
 */
import { open, readFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LOCK_FILE = join(tmpdir(), 'virt-lvmlockd-e2e.lock');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class MachineLock {
  private constructor(private readonly token: string) {}

  static async acquire(timeoutMs = 15 * 60_000): Promise<MachineLock> {
    const token = `${process.pid} ${Date.now()} ${Math.random()}`;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const file = await open(LOCK_FILE, 'wx', 0o644);
        await file.writeFile(token);
        await file.close();
        return new MachineLock(token);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`cannot create the e2e lock ${LOCK_FILE}: ${(err as Error).message}`);
      }
      const holder = await readFile(LOCK_FILE, 'utf8').catch(() => '');
      const pid = Number(holder.split(' ')[0]);
      if (holder && (!Number.isInteger(pid) || !alive(pid))) {
        // Its owner is gone: remove it only if it is still that same stale lock.
        if ((await readFile(LOCK_FILE, 'utf8').catch(() => '')) === holder) await unlink(LOCK_FILE).catch(() => undefined);
        continue;
      }
      if (Date.now() > deadline) throw new Error(`another e2e run (PID ${pid}) has held ${LOCK_FILE} for too long`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async release(): Promise<void> {
    if ((await readFile(LOCK_FILE, 'utf8').catch(() => '')) === this.token) await unlink(LOCK_FILE);
  }
}
