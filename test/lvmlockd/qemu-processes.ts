/**
 * Every QEMU process this test process starts is registered here and killed, by PID, when the
 * process exits or is interrupted, so no guest outlives a failed or cancelled test.
 */
import type { ChildProcess } from 'node:child_process';

const running = new Set<ChildProcess>();
let handlersInstalled = false;

function killAll(): void {
  for (const child of running) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  running.clear();
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.once('exit', killAll);
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(code);
    });
  }
}

export function registerQemu(child: ChildProcess): void {
  installHandlers();
  running.add(child);
  child.once('exit', () => running.delete(child));
}
