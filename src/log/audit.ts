import { fields, type Logger } from './logger.js';

/** One record per lock transition of one LV, so `grep LV=vg0/lv1` tells that LV's whole story. */
export interface AuditRecord {
  domain: string;
  uuid: string;
  lv: string;
  from: string;
  to: string;
  result: 'ok' | 'failed' | 'skipped';
  ms: number;
  reason?: string;
  cause?: string;
  /** The other host of a migration handoff this transition belongs to. */
  peer?: string;
}

export class AuditLog {
  constructor(private readonly logger: Logger) {}

  record(r: AuditRecord): void {
    const line = `lock ${fields({
      DOMAIN: r.domain,
      UUID: r.uuid,
      LV: r.lv,
      FROM: r.from,
      TO: r.to,
      RESULT: r.result,
      MS: Math.round(r.ms),
      CAUSE: r.cause,
      PEER: r.peer,
      REASON: r.reason,
    })}`;
    if (r.result === 'failed') this.logger.error(line);
    else this.logger.notice(line);
  }
}
