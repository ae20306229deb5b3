/** `lvmlockctl --info`: this host's lvmlockd lockspaces and locks (lvmlockctl.c format_info_*). */
import { CommandLineError, flag, parseArgs, valued } from './options.js';
import type { Output } from './output.js';
import { findLvByUuid } from './state.js';
import { dashedId } from './uuid.js';
import type { LvmContext } from './vg-access.js';

const OPTIONS = [
  flag('info', ['info'], 'i'),
  flag('help', ['help'], 'h'),
  flag('quit', ['quit'], 'q'),
  flag('dump', ['dump'], 'd'),
  flag('stop-lockspaces', ['stop-lockspaces'], 'S'),
  flag('stderr', ['stderr'], 'e'),
  valued('wait', ['wait'], 'w'),
  valued('kill', ['kill'], 'k'),
  valued('drop', ['drop'], 'r'),
  valued('gl-enable', ['gl-enable'], 'E'),
  valued('gl-disable', ['gl-disable'], 'D'),
];

const LOCKCTL_FAILED = 1;

export function lvmlockctl(ctx: LvmContext, argv: string[]): number {
  let args;
  try {
    args = parseArgs('lvmlockctl', argv, OPTIONS);
  } catch (err) {
    if (!(err instanceof CommandLineError)) throw err;
    if (err.getoptLine) ctx.out.rawError(err.getoptLine);
    printUsage(ctx.out);
    return LOCKCTL_FAILED;
  }
  if (argv.length === 0 || args.counts.has('help')) {
    printUsage(ctx.out);
    return 0;
  }
  if (!args.counts.has('info')) {
    ctx.out.rawError(`lvm-sim: lvmlockctl is simulated only with --info (got: ${argv.join(' ')})`);
    return LOCKCTL_FAILED;
  }
  printInfo(ctx);
  return 0;
}

function printUsage(out: Output): void {
  out.line('lvmlockctl [options]');
  out.line('Options:');
  out.line('--info | -i');
  out.line('      Print lock state information from lvmlockd.');
}

/**
 * One block per lockspace started here, in start order, separated by a blank line. The VG lock
 * shows the VG metadata version; LV resources stay listed, as "un", after their release.
 */
function printInfo(ctx: LvmContext): void {
  const key = String(ctx.hostId);
  const started = ctx.state.vgs.filter((vg) => vg.lockspaces[key]).sort((a, b) => a.lockspaces[key].seq - b.lockspaces[key].seq);
  started.forEach((vg, i) => {
    const ls = vg.lockspaces[key];
    if (i > 0) ctx.out.line('');
    ctx.out.line(`VG ${vg.name} lock_type=${vg.lockType} ${dashedId(vg.uuid)}`);
    ctx.out.line(`LS ${vg.lockType} lvm_${vg.name}`);
    ctx.out.line(`LK VG un ver ${vg.seqno}`);
    if (vg.globalLock && ls.glUsed) ctx.out.line('LK GL un ver 0');
    for (const uuid of ls.resources) {
      const mode = findLvByUuid(vg, uuid)?.holders[key] ?? 'un';
      ctx.out.line(`LK LV ${mode} ${dashedId(uuid)}`);
    }
  });
}
