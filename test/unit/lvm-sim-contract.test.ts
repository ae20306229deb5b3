/**
 * The LVM contract against the simulator: a fresh two-host cluster (temporary state file) per
 * scenario, so the scenarios run concurrently. LVMSIM_CONTRACT_MODE=process runs every command
 * as a real process through test/lvm-sim/bin instead of in this process (slower).
 */
import { defineLvmContract } from '../contract/lvm-contract.js';
import { makeSimBackend } from '../lvm-sim/backend.js';

const mode = process.env.LVMSIM_CONTRACT_MODE === 'process' ? 'process' : 'in-process';

defineLvmContract(`lvm-sim (${mode}, lvm 2.03.16)`, () => makeSimBackend({ mode }), { concurrency: true });
// lvm >= 2.03.33 names the owner in refusals: the same contract, with the suffix expected.
defineLvmContract(`lvm-sim (${mode}, host_id suffix as lvm >= 2.03.33)`, () => makeSimBackend({ mode, hostIdSuffix: true }), { concurrency: true });
