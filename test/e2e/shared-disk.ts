/**
 * The shared "LV": one raw image on one loop device. QEMU's host_device driver refuses a regular
 * file and this kernel has no device-mapper, so both instances' /dev/vg0/lvN symlinks point at
 * the same loop device, like two hosts at one LV of a shared VG.
 */
import { open, rm } from 'node:fs/promises';
import { attempt, must } from './exec.js';

export class SharedDisk {
  private attached = true;

  private constructor(
    readonly image: string,
    readonly device: string,
  ) {}

  static async create(image: string, sizeMiB: number): Promise<SharedDisk> {
    const file = await open(image, 'w');
    try {
      await file.truncate(sizeMiB * 1024 * 1024);
    } finally {
      await file.close();
    }
    const r = await must('losetup', ['--find', '--show', image]);
    const device = r.stdout.trim();
    if (!/^\/dev\/loop\d+$/.test(device)) throw new Error(`losetup --find --show ${image} printed ${JSON.stringify(r.stdout)}, not a loop device`);
    return new SharedDisk(image, device);
  }

  /**
   * Writes sector 0 through the image file. The loop device reads the file through the page
   * cache and QEMU opens the device with O_DIRECT (cache='none'), so the next boot sees it.
   */
  async writeBootSector(sector: Buffer): Promise<void> {
    const file = await open(this.image, 'r+');
    try {
      await file.write(sector, 0, sector.length, 0);
      await file.sync();
    } finally {
      await file.close();
    }
  }

  /** Detaches only our loop device, then removes the image. */
  async dispose(): Promise<void> {
    if (this.attached) {
      const r = await attempt('losetup', ['--detach', this.device]);
      if (r.rc !== 0) throw new Error(`losetup --detach ${this.device} failed: ${r.stderr.trim()}`);
      this.attached = false;
    }
    await rm(this.image, { force: true });
  }
}
