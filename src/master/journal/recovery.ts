import { mkdir, readFile, readdir, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { corruptionError, fsyncDir } from './files.js';
import type { FrameDamage } from './record.js';
import { SegmentWriter, parseSegmentName, scanSegment } from './segment.js';
import { TEMP_SUFFIX, loadLatestSnapshot } from './snapshot.js';
import type { Snapshot } from './snapshot.js';

/** What open found and repaired. */
export interface RecoveryReport {
  /** Bytes cut from the end of the last segment; 0 when it ended cleanly. */
  truncatedBytes: number;
  /** Why the tail was cut (the first damaged frame), or null. */
  reason: FrameDamage | null;
  /** Segment file name and byte offset of the cut, or null. */
  file: string | null;
  offset: number | null;
  /** Records after the snapshot, i.e. what replay() yields. */
  records: number;
  /** Seq of the loaded snapshot; 0 when there is none. */
  snapshotSeq: number;
  /** Last durable seq (or the snapshot's, if later); the next append gets lastSeq + 1. */
  lastSeq: number;
  /** Newer snapshots that failed verification and were passed over, with the reason. */
  skippedSnapshots: { file: string; reason: string }[];
}

/** A segment as verified at open; `end` bounds what replay reads. */
export interface SegmentInfo {
  path: string;
  firstSeq: number;
  end: number;
}

export interface Recovered {
  segments: SegmentInfo[];
  active: SegmentWriter;
  snapshot: Snapshot | null;
  report: RecoveryReport;
}

/**
 * Verifies every segment in order and prepares the last one for appending.
 *
 * Only the LAST segment may end in damage, and it is cut at the first bad frame: a segment is rolled
 * only after its final batch was synced, and a batch is written only after the previous one was
 * synced, so the single write that can be in flight at a crash is at the end of the last segment and
 * nothing after it was ever acknowledged. The same damage anywhere else is lost data, so it throws
 * BRL_ERR_INTERNAL naming the file and offset instead of being skipped.
 */
export async function recover(dir: string, fsync: boolean): Promise<Recovered> {
  await createDir(dir, fsync);
  const names = await readdir(dir);
  for (const name of names) {
    if (name.startsWith('snap-') && name.endsWith(TEMP_SUFFIX)) await unlink(join(dir, name)); // an interrupted compaction
  }
  const latest = await loadLatestSnapshot(dir, names);
  const snapSeq = latest.snapshot?.seq ?? 0;
  const segs = names
    .map((name) => ({ name, firstSeq: parseSegmentName(name) }))
    .filter((s): s is { name: string; firstSeq: number } => s.firstSeq !== null)
    .sort((a, b) => a.firstSeq - b.firstSeq);

  const report: RecoveryReport = {
    truncatedBytes: 0,
    reason: null,
    file: null,
    offset: null,
    records: 0,
    snapshotSeq: snapSeq,
    lastSeq: 0,
    skippedSnapshots: latest.skipped,
  };
  const segments: SegmentInfo[] = [];
  let expected = 1;
  let lastFileBytes = 0;
  for (let i = 0; i < segs.length; i++) {
    const { name, firstSeq } = segs[i];
    const path = join(dir, name);
    // A gap is fine only where the snapshot already covers the missing records.
    if (firstSeq !== expected && !(firstSeq > expected && firstSeq <= snapSeq + 1)) {
      const why = firstSeq > expected ? 'records are missing and no snapshot covers them' : 'it overlaps the previous segment';
      const snapNote = latest.skipped.length > 0 ? ` (unreadable snapshot: ${latest.skipped[0].file})` : '';
      throw corruptionError(path, 0, `segment starts at seq ${firstSeq} but ${expected} was expected: ${why}${snapNote}`);
    }
    const buf = await readFile(path);
    const scan = scanSegment(buf, path, firstSeq, (seq) => {
      if (seq > snapSeq) report.records++;
    });
    if (scan.damage) {
      if (i !== segs.length - 1) {
        throw corruptionError(path, scan.damage.offset, `${scan.damage.reason} in a sealed segment (not the last one)`);
      }
      report.truncatedBytes = buf.length - scan.end;
      report.reason = scan.damage.reason;
      report.file = name;
      report.offset = scan.damage.offset;
    }
    segments.push({ path, firstSeq, end: scan.end });
    expected = scan.lastSeq + 1;
    lastFileBytes = buf.length;
  }

  const logLast = expected - 1;
  report.lastSeq = Math.max(logLast, snapSeq);
  let active: SegmentWriter;
  const last = segments.at(-1);
  if (last !== undefined && logLast >= snapSeq) {
    active = await SegmentWriter.reopen(last.path, last.firstSeq, last.end, lastFileBytes, fsync);
  } else {
    // No segment, or the log ends before the snapshot: new records must start right after the
    // snapshot, in a fresh segment so each file stays continuous. Clean the old tail first.
    if (last !== undefined && lastFileBytes > last.end) {
      await (await SegmentWriter.reopen(last.path, last.firstSeq, last.end, lastFileBytes, fsync)).close();
    }
    active = await SegmentWriter.create(dir, snapSeq + 1, fsync);
    segments.push({ path: active.path, firstSeq: active.firstSeq, end: 0 });
  }
  return { segments, active, snapshot: latest.snapshot, report };
}

/** mkdir -p, then sync each new directory's parent so the directories themselves survive a crash. */
async function createDir(dir: string, fsync: boolean): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined || !fsync) return;
  const top = resolve(first);
  for (let d = resolve(dir); ; d = dirname(d)) {
    await fsyncDir(dirname(d));
    if (d === top || dirname(d) === d) break;
  }
}
