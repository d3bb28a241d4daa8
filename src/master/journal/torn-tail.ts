import { open, readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { fsyncDir, writeFully } from './files.js';

/** Enough for repeated crashes at one offset; past it something is looping and should stop. */
const MAX_COPIES = 100;

/**
 * Copies a torn tail to `<segment>.torn-<offset>` beside the segment before recovery cuts it, so no
 * byte is destroyed silently and an operator can still inspect it. The copy is synced (and its
 * directory entry too) before the caller truncates. If a copy with that name already holds the same
 * bytes (a crash between copy and cut), it is reused; a different one gets a `.N` suffix instead of
 * being overwritten. Returns the copy's file name. The names never parse as segments, so open ignores them.
 */
export async function saveTornTail(segmentPath: string, offset: number, bytes: Uint8Array, fsync: boolean): Promise<string> {
  const base = `${segmentPath}.torn-${offset}`;
  for (let n = 0; n < MAX_COPIES; n++) {
    const path = n === 0 ? base : `${base}.${n}`;
    let handle;
    try {
      handle = await open(path, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (Buffer.from(bytes).equals(await readFile(path))) return basename(path);
      continue;
    }
    try {
      await writeFully(handle, bytes, 0);
      if (fsync) await handle.sync();
    } finally {
      await handle.close();
    }
    if (fsync) await fsyncDir(dirname(segmentPath));
    return basename(path);
  }
  throw new Error(`${MAX_COPIES} torn-tail copies of ${basename(segmentPath)} at offset ${offset} already exist`);
}
