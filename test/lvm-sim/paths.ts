import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root, from this module's place in dist/test/lvm-sim/. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The simulator's executables: lvm, lvmlockctl, lvm-sim. */
export const SIM_BIN_DIR = join(ROOT, 'test/lvm-sim/bin');
