import type { LockTable } from '../locks/table.js';
import type { HoldingAnswer, HoldingQuery, HoldingRow } from '../peers/messages.js';

/**
 * The answer to a peer's `holding` query: what this host's lock table says of each LV asked for.
 * From the table only (lvmlockd's grants as last read, and each domain's phase), never from LVM:
 * the asker is refusing a start and waits at most a second. Pure.
 */
export function answerHolding(table: LockTable, query: HoldingQuery): HoldingAnswer {
  const rows: HoldingRow[] = [];
  for (const lv of query.lvs) {
    const held = table.held.get(lv);
    const mode = held?.mode ?? 'none';
    const users = table.usersOf(lv);
    for (const entry of users) {
      rows.push({ lv, mode, domain: { uuid: entry.uuid, name: entry.name, phase: entry.phase, since: entry.since } });
    }
    if (users.length === 0 && held) rows.push({ lv, mode, unused: table.owned.has(lv) ? 'held, unused' : 'held, not ours' });
    if (users.length === 0 && !held) rows.push({ lv, mode: 'none' });
  }
  const known = rows.filter((r) => r.domain).length;
  return { result: 'holding', detail: `${known} domain use(s) of ${query.lvs.length} LV(s)`, rows };
}
