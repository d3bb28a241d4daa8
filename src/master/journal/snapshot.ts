import { open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir, parseSeqName, seqName, writeFully } from './files.js';
import { SNAPSHOT_MAGIC, decodeFrame, encodeFrame } from './record.js';

/** The state as of `seq`: every record <= seq is folded into `payload`. */
export interface Snapshot {
  seq: number;
  payload: Uint8Array;
}

export const TEMP_SUFFIX = '.tmp';

export function snapshotName(seq: number): string {
  return seqName('snap-', seq, '.snap');
}

export function parseSnapshotName(name: string): number | null {
  return parseSeqName(name, 'snap-', '.snap');
}

/**
 * Writes a snapshot atomically: temp file, fsync, rename, fsync of the directory. A crash at any
 * point leaves either the previous snapshot or the complete new one (plus a temp file that open
 * deletes), never a half-written file under the final name. Returns the file name.
 */
export async function writeSnapshot(dir: string, seq: number, payload: Uint8Array, fsync: boolean): Promise<string> {
  const name = snapshotName(seq);
  const tmp = join(dir, name + TEMP_SUFFIX);
  const handle = await open(tmp, 'w');
  try {
    await writeFully(handle, encodeFrame(SNAPSHOT_MAGIC, seq, payload), 0);
    if (fsync) await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, join(dir, name));
  if (fsync) await fsyncDir(dir);
  return name;
}

/** Reads one snapshot file; returns why it is unusable instead of throwing, so open can fall back. */
export async function readSnapshot(dir: string, name: string): Promise<Snapshot | string> {
  const seq = parseSnapshotName(name);
  if (seq === null) return 'not a snapshot file name';
  const buf = await readFile(join(dir, name));
  const frame = decodeFrame(buf, 0, SNAPSHOT_MAGIC);
  if (!frame.ok) return frame.damage;
  if (frame.next !== buf.length) return 'trailing bytes after the snapshot frame';
  if (frame.seq !== seq) return `holds seq ${frame.seq}, its name says ${seq}`;
  return { seq, payload: frame.payload };
}

export interface LatestSnapshot {
  snapshot: Snapshot | null;
  file: string | null;
  /** Newer snapshot files that failed verification, with the reason. */
  skipped: { file: string; reason: string }[];
}

/**
 * The newest snapshot that verifies. Falling back to an older one is safe because segments are only
 * deleted once a newer snapshot is durable; if they are gone, the sequence check in recovery refuses
 * the gap rather than replaying an incomplete history.
 */
export async function loadLatestSnapshot(dir: string, names: readonly string[]): Promise<LatestSnapshot> {
  const files = names
    .filter((n) => parseSnapshotName(n) !== null)
    .sort((a, b) => parseSnapshotName(b)! - parseSnapshotName(a)!);
  const skipped: { file: string; reason: string }[] = [];
  for (const file of files) {
    const result = await readSnapshot(dir, file);
    if (typeof result !== 'string') return { snapshot: result, file, skipped };
    skipped.push({ file, reason: result });
  }
  return { snapshot: null, file: null, skipped };
}

/** Removes snapshot files older than `keepSeq`. */
export async function removeOlderSnapshots(dir: string, names: readonly string[], keepSeq: number): Promise<void> {
  for (const name of names) {
    const seq = parseSnapshotName(name);
    if (seq !== null && seq < keepSeq) await unlink(join(dir, name));
  }
}
