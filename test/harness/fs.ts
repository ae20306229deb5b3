import { access } from 'node:fs/promises';

/** Whether a path exists (any access error counts as no). */
export async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
