import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root, from this file's place in dist/test/harness/. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const DAEMON_MAIN = join(ROOT, 'dist/src/main.js');
export const CLI_MAIN = join(ROOT, 'dist/src/cli/main.js');
export const HOOK_SCRIPT = join(ROOT, 'src/hook/qemu');
export const SIM_BIN = join(ROOT, 'test/lvm-sim/bin');
