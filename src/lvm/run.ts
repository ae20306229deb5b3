import { spawn } from 'node:child_process';

/** What one external command did. `rc` is null when it was killed by a signal or never started. */
export interface RunResult {
  rc: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
}

export type Exec = (file: string, args: string[], opts: { timeoutMs: number }) => Promise<RunResult>;

/** Each of stdout and stderr keeps at most this many bytes; the rest is read and dropped. */
export const OUTPUT_CAP_BYTES = 4 * 1024 * 1024;

/** Time between SIGTERM and SIGKILL for a command that ran past its timeout. */
export const KILL_GRACE_MS = 2000;

/**
 * The error classifier matches LVM's English texts, so translations must be off. lvm also prints a
 * "File descriptor N leaked" line for every inherited descriptor; that text would be noise in stderr.
 */
const COMMAND_ENV = { LC_ALL: 'C', LANG: 'C', LVM_SUPPRESS_FD_WARNINGS: '1' };

class CappedBuffer {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  dropped = 0;

  add(chunk: Buffer): void {
    const room = OUTPUT_CAP_BYTES - this.kept;
    if (room <= 0) {
      this.dropped += chunk.length;
      return;
    }
    const part = chunk.length <= room ? chunk : chunk.subarray(0, room);
    this.chunks.push(part);
    this.kept += part.length;
    this.dropped += chunk.length - part.length;
  }

  text(): string {
    return Buffer.concat(this.chunks, this.kept).toString('utf8');
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    // The negative pid addresses the whole process group the command leads (spawned detached).
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/**
 * Runs `file` with an argument vector (never through a shell), stdin closed, in a process group of
 * its own. On timeout the whole group gets SIGTERM, then SIGKILL after a grace period, and the
 * promise resolves with `timedOut: true`. It never rejects: a command that cannot be started
 * resolves with rc null and the reason in stderr.
 */
export const runCommand: Exec = (file, args, opts) =>
  new Promise<RunResult>((resolve) => {
    const started = performance.now();
    const stdout = new CappedBuffer();
    const stderr = new CappedBuffer();
    let timedOut = false;
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    let giveUpTimer: NodeJS.Timeout | undefined;

    const child = spawn(file, args, {
      detached: true,
      shell: false,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...COMMAND_ENV },
    });

    const finish = (rc: number | null, signal: string | null, extraErr?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timeoutTimer);
      clearTimeout(killTimer);
      clearTimeout(giveUpTimer);
      let err = stderr.text();
      if (stdout.dropped > 0) err += `\n[stdout truncated: ${stdout.dropped} bytes over the ${OUTPUT_CAP_BYTES}-byte cap dropped]`;
      if (stderr.dropped > 0) err += `\n[stderr truncated: ${stderr.dropped} bytes over the ${OUTPUT_CAP_BYTES}-byte cap dropped]`;
      if (extraErr) err += (err && !err.endsWith('\n') ? '\n' : '') + extraErr;
      resolve({ rc, signal, stdout: stdout.text(), stderr: err, ms: Math.round(performance.now() - started), timedOut });
    };

    const timeoutTimer = setTimeout(() => {
      if (child.pid === undefined) return;
      timedOut = true;
      const pid = child.pid;
      killGroup(pid, 'SIGTERM');
      killTimer = setTimeout(() => {
        killGroup(pid, 'SIGKILL');
        // A descendant that left the group could keep our pipes open for ever; stop waiting for it.
        giveUpTimer = setTimeout(() => {
          child.stdout?.destroy();
          child.stderr?.destroy();
          finish(child.exitCode, child.signalCode);
        }, KILL_GRACE_MS);
      }, KILL_GRACE_MS);
    }, Math.max(1, opts.timeoutMs));

    child.stdout.on('data', (chunk: Buffer) => stdout.add(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.add(chunk));
    child.on('error', (err) => {
      // Only reached when the process could not be started (ENOENT, EACCES, ...).
      finish(null, null, `cannot run ${file}: ${err.message}`);
    });
    // 'close' (not 'exit') so that all output has been read; the timeout still covers a descendant
    // that keeps the pipes open after the command itself exited.
    child.on('close', (code, signal) => finish(code, signal));
  });
