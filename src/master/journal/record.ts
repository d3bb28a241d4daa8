import { crc32c } from './crc32c.js';

/**
 * One frame on disk (little-endian), used for journal records and, with its own magic, snapshots:
 *
 *   0  magic   u32   tells a frame start from garbage or a zero-filled tail
 *   4  crc     u32   CRC-32C of bytes 8 .. end (length, seq and payload in one contiguous run)
 *   8  length  u32   payload bytes
 *  12  seq     u64   two u32 halves (low first); JS numbers stay exact to 2^53
 *  20  payload
 *
 * The checksum covers the length and the sequence number too, so a flipped length or seq is caught
 * like a flipped payload byte rather than read as a different record.
 */
export const RECORD_MAGIC = 0x4a4c5242; // "BRLJ"
export const SNAPSHOT_MAGIC = 0x534c5242; // "BRLS"
export const HEADER_BYTES = 20;
/** Refused at append: a bound keeps one bad length from making recovery read gigabytes. */
export const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;

const TWO_32 = 0x1_0000_0000;
/** Largest high half that keeps seq <= Number.MAX_SAFE_INTEGER. */
const MAX_SEQ_HIGH = 0x1f_ffff;

/** Why a frame could not be read. The first two are what a crash mid-write leaves behind. */
export type FrameDamage = 'torn-header' | 'torn-payload' | 'bad-magic' | 'bad-checksum' | 'bad-header';

export type Decoded =
  | { ok: true; seq: number; payload: Buffer; next: number }
  | { ok: false; damage: FrameDamage };

export function frameBytes(payloadBytes: number): number {
  return HEADER_BYTES + payloadBytes;
}

/** Encodes a frame holding a copy of `payload`. */
export function encodeFrame(magic: number, seq: number, payload: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  writeFrameAt(buf, 0, magic, seq, payload);
  return buf;
}

/** Writes a frame holding a copy of `payload` at `off` in `buf` (which must have room); returns the offset after it. */
export function writeFrameAt(buf: Buffer, off: number, magic: number, seq: number, payload: Uint8Array): number {
  buf.set(payload, off + HEADER_BYTES);
  return sealAt(buf, off, magic, seq, payload.length);
}

/** Encodes a frame whose payload is `text` as UTF-8, without an intermediate copy. */
export function encodeTextFrame(magic: number, seq: number, text: string): Buffer {
  const n = Buffer.byteLength(text, 'utf8');
  const buf = Buffer.allocUnsafe(HEADER_BYTES + n);
  buf.write(text, HEADER_BYTES, 'utf8');
  sealAt(buf, 0, magic, seq, n);
  return buf;
}

/** Fills in the header of the frame at `off` whose `length` payload bytes are already in place; returns its end. */
function sealAt(buf: Buffer, off: number, magic: number, seq: number, length: number): number {
  const end = off + HEADER_BYTES + length;
  buf.writeUInt32LE(magic, off);
  buf.writeUInt32LE(length, off + 8);
  buf.writeUInt32LE(seq >>> 0, off + 12);
  buf.writeUInt32LE(Math.floor(seq / TWO_32), off + 16);
  buf.writeUInt32LE(crc32c(buf.subarray(off + 8, end)), off + 4);
  return end;
}

/** Decodes the frame at `off`. `payload` is a view into `buf`, not a copy. */
export function decodeFrame(buf: Buffer, off: number, magic: number): Decoded {
  if (buf.length - off < HEADER_BYTES) return { ok: false, damage: 'torn-header' };
  if (buf.readUInt32LE(off) !== magic) return { ok: false, damage: 'bad-magic' };
  const length = buf.readUInt32LE(off + 8);
  const end = off + HEADER_BYTES + length;
  if (end > buf.length) return { ok: false, damage: 'torn-payload' };
  if (crc32c(buf.subarray(off + 8, end)) !== buf.readUInt32LE(off + 4)) return { ok: false, damage: 'bad-checksum' };
  const high = buf.readUInt32LE(off + 16);
  if (high > MAX_SEQ_HIGH) return { ok: false, damage: 'bad-header' };
  const seq = high * TWO_32 + buf.readUInt32LE(off + 12);
  return { ok: true, seq, payload: buf.subarray(off + HEADER_BYTES, end), next: end };
}
