/**
 * Entry point of the simulator's executables: `main.js TOOL ARGS...` with TOOL one of lvm,
 * lvmlockctl, lvm-sim (the wrappers in bin/ pass it). Writes the tool's output and exits with
 * its code.
 */
import { ADMIN_USAGE } from './admin.js';
import { contextFromEnv, SimEnvError } from './env.js';
import { SIM_SETUP_ERROR } from './output.js';
import { runTool } from './run.js';

async function main(): Promise<void> {
  const [tool = '', ...argv] = process.argv.slice(2);
  if (tool === 'lvm-sim' && (argv.length === 0 || ['help', '--help', '-h'].includes(argv[0]))) {
    (argv.length === 0 ? process.stderr : process.stdout).write(`${ADMIN_USAGE}\n`);
    process.exitCode = argv.length === 0 ? 2 : 0;
    return;
  }
  let ctx;
  try {
    ctx = contextFromEnv(process.env);
  } catch (err) {
    if (!(err instanceof SimEnvError)) throw err;
    process.stderr.write(`lvm-sim: ${err.message}\n`);
    process.exitCode = SIM_SETUP_ERROR;
    return;
  }
  // The process start, not the moment this module ran: node's own start-up is part of the call.
  const result = await runTool(tool, argv, { ...ctx, startMs: Math.round(performance.timeOrigin) });
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr);
  process.exitCode = result.rc;
}

await main();
