import { describeFailure, type LvFailure } from '../lvm/errors.js';
import type { HolderSource } from './refusal.js';

/**
 * The refusal's reasons, one per failure, naming the holders when a lookup is wired. Never
 * rejects: the refusal must go out whatever the lookup does.
 */
export async function describeRefused(holders: HolderSource | undefined, failures: LvFailure[], budgetMs: number): Promise<string[]> {
  if (!holders || !failures.some((f) => f.cls === 'locked-by-other-host')) return failures.map((f) => describeFailure(f));
  try {
    return await holders.describe(failures, Math.max(0, budgetMs));
  } catch (err) {
    return failures.map((f) => (f.cls === 'locked-by-other-host' ? `${describeFailure(f)} (holder unknown: ${(err as Error).message})` : describeFailure(f)));
  }
}
