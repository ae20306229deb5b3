/**
 * Directories of the root filesystem that the instances mount over inside their own namespaces
 * (/run/libvirt, /run/virt-lvmlockd ...). A mount needs its mount point to exist, so missing ones
 * are created, and only those are removed again at the end.
 */
import { existsSync } from 'node:fs';
import { mkdir, rmdir } from 'node:fs/promises';

export class HostMountPoints {
  private readonly created: string[] = [];

  async ensure(paths: string[]): Promise<void> {
    for (const path of paths) {
      if (existsSync(path)) continue;
      await mkdir(path, { recursive: false, mode: 0o755 });
      this.created.push(path);
    }
  }

  /** Removes what ensure() created, newest first; a directory someone filled meanwhile stays. */
  async dispose(): Promise<void> {
    const errors: string[] = [];
    for (const path of this.created.splice(0).reverse()) {
      try {
        await rmdir(path);
      } catch (err) {
        errors.push(`${path}: ${(err as Error).message}`);
      }
    }
    if (errors.length) throw new Error(`could not remove mount points the harness created: ${errors.join('; ')}`);
  }
}
