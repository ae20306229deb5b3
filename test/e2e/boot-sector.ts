/**
 * Boot sectors for the test guest's disk. SeaBIOS loads sector 0 of the disk at 0x7c00 and jumps
 * to it in real mode.
 *
 * The "busy" sector keeps rewriting guest RAM so that a throttled live migration never converges,
 * which leaves time to abort it or to kill the destination QEMU. Real mode only reaches the first
 * MiB, and a guest dirtying that little still converges, so it switches to 32-bit protected mode
 * with a flat GDT and writes one dword into every 4 KiB page from 1 MiB to 24 MiB, forever, with a
 * new value each pass: every page is dirty again after a few microseconds.
 */

const SECTOR = 512;
const LOAD_ADDRESS = 0x7c00;
/** Where the GDT and its descriptor sit inside the sector (8-byte aligned, after the code). */
const GDT_OFFSET = 0x40;
const GDT_DESCRIPTOR_OFFSET = GDT_OFFSET + 3 * 8;
const CODE_SELECTOR = 0x08;
const DATA_SELECTOR = 0x10;
const DIRTY_FROM = 0x100000;
const DIRTY_TO = 0x1800000;
const PAGE = 0x1000;

const le16 = (v: number) => [v & 0xff, (v >> 8) & 0xff];
const le32 = (v: number) => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff];

/** A sector that boots nothing: SeaBIOS finds no boot signature and idles ("No bootable device"). */
export function blankBootSector(): Buffer {
  return Buffer.alloc(SECTOR);
}

export interface BusyOptions {
  /** Dirty the pages once, then halt (idle, no CPU): a throttled migration still has that much to send. */
  once?: boolean;
  /** End of the dirtied range, in bytes (default 24 MiB). */
  dirtyTo?: number;
}

/**
 * `once` is for nested TCG, where a guest that loops flat out slows its whole hypervisor: its
 * pages, written once, stay non-zero, so a migration at 1 MiB/s takes about a second per MiB.
 */
export function busyBootSector(options: BusyOptions = {}): Buffer {
  const dirtyTo = options.dirtyTo ?? DIRTY_TO;
  const sector = Buffer.alloc(SECTOR);
  const code: number[] = [];
  const at = () => code.length;

  // --- 16-bit real mode
  code.push(0xfa); //                                   cli
  code.push(0x31, 0xc0); //                             xor  ax, ax
  code.push(0x8e, 0xd8); //                             mov  ds, ax
  code.push(0x0f, 0x01, 0x16, ...le16(LOAD_ADDRESS + GDT_DESCRIPTOR_OFFSET)); // lgdt [descriptor]
  code.push(0x0f, 0x20, 0xc0); //                       mov  eax, cr0
  code.push(0x0c, 0x01); //                             or   al, 1 (PE)
  code.push(0x0f, 0x22, 0xc0); //                       mov  cr0, eax
  const farJump = at();
  code.push(0xea, 0, 0, ...le16(CODE_SELECTOR)); //     jmp  CODE_SELECTOR:protected (offset patched below)

  // --- 32-bit protected mode
  const protectedMode = at();
  code.splice(farJump + 1, 2, ...le16(LOAD_ADDRESS + protectedMode));
  code.push(0x66, 0xb8, ...le16(DATA_SELECTOR)); //     mov  ax, DATA_SELECTOR
  code.push(0x8e, 0xd8); //                             mov  ds, ax
  code.push(0x8e, 0xc0); //                             mov  es, ax
  code.push(0x8e, 0xd0); //                             mov  ss, ax
  code.push(0x31, 0xd2); //                             xor  edx, edx
  const nextPass = at();
  code.push(0x42); //                                   inc  edx (a new value each pass)
  code.push(0xbf, ...le32(DIRTY_FROM)); //              mov  edi, DIRTY_FROM
  const nextPage = at();
  code.push(0x89, 0x17); //                             mov  [edi], edx
  code.push(0x81, 0xc7, ...le32(PAGE)); //              add  edi, PAGE
  code.push(0x81, 0xff, ...le32(dirtyTo)); //            cmp  edi, dirtyTo
  code.push(0x72, (nextPage - (at() + 2)) & 0xff); //   jb   nextPage
  if (options.once) {
    const halt = at();
    code.push(0xf4); //                                 hlt (interrupts are off: for good)
    code.push(0xeb, (halt - (at() + 2)) & 0xff); //     jmp  halt
  } else {
    code.push(0xeb, (nextPass - (at() + 2)) & 0xff); // jmp  nextPass
  }

  if (code.length > GDT_OFFSET) throw new Error(`boot code is ${code.length} bytes, more than the ${GDT_OFFSET} before the GDT`);
  Buffer.from(code).copy(sector, 0);

  // Flat 4 GiB segments: null, code (0x9a: present, ring 0, execute/read), data (0x92: read/write).
  sector.writeBigUInt64LE(0n, GDT_OFFSET);
  sector.writeBigUInt64LE(0x00cf9a000000ffffn, GDT_OFFSET + 8);
  sector.writeBigUInt64LE(0x00cf92000000ffffn, GDT_OFFSET + 16);
  Buffer.from([...le16(3 * 8 - 1), ...le32(LOAD_ADDRESS + GDT_OFFSET)]).copy(sector, GDT_DESCRIPTOR_OFFSET);

  sector[510] = 0x55; // boot signature
  sector[511] = 0xaa;
  return sector;
}
