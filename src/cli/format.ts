export interface StatusJson {
  version: string;
  startedAt: string;
  managedVgs: string[];
  libvirt: { owner: string | null };
  locks: Array<{ lv: string; mode: string; domain: string; name: string; phase: string; wanted: string; since: number; lastError?: string; peer?: string }>;
  domains: Array<{ uuid: string; name: string; phase: string; lastError: string | null }>;
  lastReconcile: { cause: string; at: number; ms: number; problems: string[] } | null;
}

/** The lock table as aligned columns, for people; scripts use --json. */
export function formatStatus(status: StatusJson, now = Date.now()): string {
  const lines: string[] = [];
  lines.push(`virt-lvmlockd ${status.version}, up since ${status.startedAt}`);
  lines.push(`managed VGs: ${status.managedVgs.join(' ') || '(none)'}; libvirt-dbus: ${status.libvirt.owner ?? 'not on the bus'}`);
  if (status.lastReconcile) {
    const r = status.lastReconcile;
    lines.push(`last reconcile: ${new Date(r.at).toISOString()} (${r.cause}), ${r.problems.length} problems`);
  }
  lines.push('');
  const header = ['LV', 'MODE', 'WANTED', 'DOMAIN', 'UUID', 'PHASE', 'PEER', 'FOR'];
  const rows = status.locks.map((l) => [l.lv, l.mode, l.wanted, l.name, l.domain, l.phase, l.peer ?? '-', age(now - l.since)]);
  lines.push(...table([header, ...rows]));
  if (rows.length === 0) lines.push('(no locks held for domains)');
  for (const d of status.domains) if (d.lastError) lines.push(`domain ${d.name}: ${d.lastError}`);
  for (const p of status.lastReconcile?.problems ?? []) lines.push(`problem: ${p}`);
  return `${lines.join('\n')}\n`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd());
}

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}
