/**
 * The `actions` section: the seed hook's op -> action mapping, kept so its users can carry
 * their config over, but checked. Some ops only make sense with one action, and each such
 * rule says why, so a carried-over setting that would be unsafe is refused with a reason
 * instead of silently ignored.
 */
import { z } from 'zod';
import { describeValue, listChoices } from './describe.js';
import { live, section, type Section, type Setting } from './settings.js';
import { ACTIONS, HOOK_OPS, type Action, type Config, type HookOp } from './types.js';

interface OpRule {
  readonly accepted: readonly [Action, ...Action[]];
  readonly default: Action;
  /** Why only the accepted action is allowed, for ops restricted to one. */
  readonly why?: string;
}

const LOCKING: readonly [Action, ...Action[]] = ['exclusive', 'shared', 'none'];
const ALWAYS_RELEASED =
  "the daemon always releases a stopped domain's locks, since keeping them would leak locks that stop the domain from starting on any other host";

const OP_RULES: Readonly<Record<HookOp, OpRule>> = {
  prepare: { accepted: LOCKING, default: 'exclusive' },
  start: { accepted: LOCKING, default: 'none' },
  started: { accepted: LOCKING, default: 'none' },
  migrate: { accepted: LOCKING, default: 'shared' },
  stopped: { accepted: ['unlock'], default: 'unlock', why: ALWAYS_RELEASED },
  release: { accepted: ['unlock'], default: 'unlock', why: ALWAYS_RELEASED },
  restore: {
    accepted: ['none'],
    default: 'none',
    why: 'a restore runs the prepare hook too, and that is where its locks are taken',
  },
  reconnect: {
    accepted: ['none'],
    default: 'none',
    why: 'a failing reconnect hook makes libvirt kill the running QEMU; the daemon checks running domains by reconciling instead',
  },
  attach: {
    accepted: ['none'],
    default: 'none',
    why: "libvirt's qemu driver never calls the attach hook, so nothing could be locked there",
  },
};

function actionFor(op: HookOp) {
  const rule = OP_RULES[op];
  const hint = `write ${listChoices(rule.accepted)}`;
  return z
    .string({
      error: (issue) =>
        issue.input === null || issue.input === undefined
          ? `has no value; ${hint}, or remove the op to use its default (${rule.default})`
          : `${describeValue(issue.input)} is not an action; ${hint}`,
    })
    .transform((value, ctx) => {
      if (!(ACTIONS as readonly string[]).includes(value)) {
        ctx.issues.push({ code: 'custom', message: `${JSON.stringify(value)} is not an action; ${hint}`, input: value });
        return z.NEVER;
      }
      const action = value as Action;
      if (!rule.accepted.includes(action)) {
        const because = rule.why === undefined ? '' : `: ${rule.why}`;
        ctx.issues.push({ code: 'custom', message: `${JSON.stringify(value)} is not accepted for ${op}${because}; ${hint}`, input: value });
        return z.NEVER;
      }
      return action;
    })
    .default(rule.default);
}

type ActionSetting = Setting<HookOp, z.ZodType<Action>>;
type ActionSettings = Record<HookOp, ActionSetting>;

/** Every op is a key of its own, so ops left out of the file get their default, one by one. */
export const actionsSection: Section<ActionSettings> = section(
  'actions',
  Object.fromEntries(HOOK_OPS.map((op): [HookOp, ActionSetting] => [op, live(op, actionFor(op))])) as ActionSettings,
  { keyNoun: 'hook op' },
);

/**
 * The ops for which the hook must wait for the daemon's verdict: those that take a lock.
 * No other op takes a lock that libvirt must wait for, so the hook need not hold libvirt up
 * for it.
 */
export function hookGatedOps(config: Config): HookOp[] {
  return HOOK_OPS.filter((op) => {
    const action = config.actions[op];
    return action === 'exclusive' || action === 'shared';
  }).sort();
}
