import { mkdir, readFile, readdir, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fsyncDir, journalCorruptError } from './files.js';
import type { FrameDamage } from './record.js';
import { SegmentWriter, findIntactRecordAfter, parseSegmentName, scanSegment } from './segment.js';
import { TEMP_SUFFIX, loadLatestSnapshot } from './snapshot.js';
import type { Snapshot } from './snapshot.js';
import { saveTornTail } from './torn-tail.js';

/** What open found and repaired. */
export interface RecoveryReport {
  /** Bytes cut from the end of the last segment; 0 when it ended cleanly. */
  truncatedBytes: number;
  /** Why the tail was cut (the first damaged frame), or null. */
  reason: FrameDamage | null;
  /** Segment file name and byte offset of the cut, or null. */
  file: string | null;
  offset: number | null;
  /** File name (in the journal directory) of the copy of the cut bytes, `<segment>.torn-<offset>`; or null. */
  tornCopy: string | null;
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

const RESTORE = 'The journal was not modified; restore the data directory from a backup.';

/**
 * Verifies every segment in order and prepares the last one for appending.
 *
 * Only a torn tail is repaired: damage in the LAST segment after which no intact record follows. A
 * segment is rolled only after its final batch was synced, and a batch is written only after the
 * previous one was synced, so the single write that can be in flight at a crash is at the end of the
 * last segment and nothing after it was ever acknowledged. That tail is copied aside (torn-tail.ts)
 * and then cut.
 *
 * Everything else is lost or damaged acknowledged data: damage in a sealed segment, a gap in the
 * sequence, or damage in the last segment with intact records after it (a crash cannot write past
 * the garbage it leaves, bytes were changed in place). Cutting there would rewind the cluster state
 * and hand out used seqs again, so it throws BRL_ERR_JOURNAL_CORRUPT naming the file and offset and
 * modifies nothing: no segment is touched before every one has verified.
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
    tornCopy: null,
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
      throw journalCorruptError(path, 0, `segment starts at seq ${firstSeq} but ${expected} was expected: ${why}${snapNote}`, RESTORE);
    }
    const buf = await readFile(path);
    const scan = scanSegment(buf, path, firstSeq, (seq) => {
      if (seq > snapSeq) report.records++;
    });
    if (scan.damage) {
      const { offset, reason } = scan.damage;
      const later = segs.slice(i + 1).map((s) => s.name);
      if (later.length > 0) {
        throw journalCorruptError(path, offset, `${reason} at seq ${scan.lastSeq + 1} in a sealed segment (not the last one)`, remedy(path, offset, scan, later));
      }
      const intact = findIntactRecordAfter(buf, offset, scan.lastSeq + 1);
      if (intact) {
        throw journalCorruptError(
          path,
          offset,
          `${reason} at seq ${scan.lastSeq + 1}, but an intact record (seq ${intact.seq}) follows at offset ${intact.offset}: ` +
            'damaged in place, not a torn write',
          remedy(path, offset, scan, later),
        );
      }
      report.tornCopy = await saveTornTail(path, offset, buf.subarray(offset), fsync);
      report.truncatedBytes = buf.length - scan.end;
      report.reason = reason;
      report.file = name;
      report.offset = offset;
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

/** What an operator can do about damage at `offset` of `path`, given the segments after it. */
function remedy(path: string, offset: number, scan: { count: number; lastSeq: number }, later: string[]): string {
  const moveLater = later.length > 0 ? `, and move the ${later.length} later segment(s) (${later[0]} on) out of the directory` : '';
  return (
    'The journal was not modified. Restore the data directory from a backup, or, to keep what precedes the ' +
    `damage (this segment's ${scan.count} intact record(s)) and lose every record from seq ${scan.lastSeq + 1} on: ` +
    `stop, keep a copy of ${path}, cut it with \`truncate -s ${offset}\`${moveLater}, then restart.`
  );
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
