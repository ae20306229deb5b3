/** LVM identifiers: 32 characters from [a-zA-Z0-9], shown dashed 6-4-4-4-4-4-6 (lvm2 lib/uuid). */
import { randomInt } from 'node:crypto';

const ID_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const ID_LEN = 32;
const GROUPS = [6, 4, 4, 4, 4, 4, 6];

export function newLvmId(): string {
  let id = '';
  for (let i = 0; i < ID_LEN; i++) id += ID_CHARS[randomInt(ID_CHARS.length)];
  return id;
}

/** The dashed form printed by `lvs -o lv_uuid` and `lvmlockctl --info`. */
export function dashedId(id: string): string {
  const parts: string[] = [];
  let at = 0;
  for (const len of GROUPS) {
    parts.push(id.slice(at, at + len));
    at += len;
  }
  return parts.join('-');
}
