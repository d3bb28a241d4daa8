export { Journal } from './journal.js';
export type { JournalOptions, JournalRecord, JournalStats, JsonRecord } from './journal.js';
export type { RecoveryReport } from './recovery.js';
export type { Snapshot } from './snapshot.js';
export type { FrameDamage } from './record.js';
export { crc32c } from './crc32c.js';
export { MAX_PAYLOAD_BYTES } from './record.js';
