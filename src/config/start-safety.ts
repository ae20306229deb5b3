/**
 * Never two writers: a fresh start must reach QEMU's exec, where QEMU opens the disks, holding
 * ex on its non-shareable LVs. The hook ops that run on a fresh start are prepare, start (both
 * before QEMU is exec'd) and started (after QEMU is up). An `exclusive` action takes each LV in
 * its own mode (ex, or sh for a shareable or readonly disk), `shared` takes every LV sh, and
 * `unlock`/`none` change nothing. So the rule is: the first of prepare/start that acts must
 * take ex, and nothing after it, up to started, may turn that ex into sh.
 */
import type { Action, HookOp } from './types.js';

export interface StartSafetyIssue {
  /** The op whose action is refused. */
  op: HookOp;
  message: string;
}

/** Ops run before QEMU opens the disks, in the order libvirt calls them. */
const BEFORE_EXEC = ['prepare', 'start'] as const;
/** Every op of a fresh start that can change a lock, in order. */
const START_OPS = ['prepare', 'start', 'started'] as const;

const DOUBLE_START = 'two hosts could then start the same guest and both write its disks';

/** Why `actions` would let a fresh start run without ex; empty when it is safe. Pure. */
export function startSafetyIssues(actions: Readonly<Record<HookOp, Action>>): StartSafetyIssue[] {
  const first = BEFORE_EXEC.find((op) => actions[op] !== 'none');
  if (first === undefined) {
    return [
      {
        op: 'prepare',
        message:
          `neither prepare nor start takes a lock (both are none), so QEMU would open the disks unlocked and ${DOUBLE_START}; ` +
          'write prepare: exclusive (the default)',
      },
    ];
  }
  const issues: StartSafetyIssue[] = [];
  if (actions[first] !== 'exclusive') {
    const lockWord = actions[first] === 'shared' ? 'takes only a shared lock' : 'releases the locks';
    issues.push({
      op: first,
      message:
        `${JSON.stringify(actions[first])} ${lockWord} before QEMU opens the disks, so a fresh start would run without ex and ${DOUBLE_START}; ` +
        `write ${first}: exclusive (and any later op of the start: exclusive or none)`,
    });
  }
  for (const op of START_OPS.slice(START_OPS.indexOf(first) + 1)) {
    const action = actions[op];
    if (action !== 'shared' && action !== 'unlock') continue;
    const effect = action === 'shared' ? 'turns the exclusive lock taken earlier into a shared one' : 'releases the lock taken earlier';
    const when = op === 'started' ? 'while QEMU runs' : 'before QEMU opens the disks';
    issues.push({
      op,
      message: `${JSON.stringify(action)} ${effect} ${when}, so another host could start the same guest and both write its disks; write ${op}: none (or exclusive)`,
    });
  }
  return issues;
}
