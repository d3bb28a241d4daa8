/**
 * Coordinated omission (Gil Tene): a server that stalls for a while. The open loop keeps its schedule, so every
 * request due during the stall waits for it and records it (linearly fewer ms the later it was due); the closed
 * loop stops sending while its connections wait, so only one request per connection sees the stall.
 */
import { describe, expect, it } from 'vitest';
import { runLoad } from '../../loadgen/index.js';
import { targets } from './servers.js';

const t = targets();

const STALL_MS = 400;
/** Connection set-up and first-call compilation are kept out of the numbers, as in any real run. */
const WARMUP_MS = 300;
/** The stall begins with the first request at least this long after the first one the server saw: 300 ms into the window. */
const STALL_AFTER_MS = WARMUP_MS + 300;

/** Answers at once, except that everything arriving during one 400 ms window is held until it ends. */
async function stallingTarget(): Promise<{ url: string; stalled: () => number }> {
  let first = -1;
  let state: 'before' | 'stalling' | 'after' = 'before';
  const held: (() => void)[] = [];
  let stalled = 0;
  const target = await t.start((_req, res) => {
    const answer = (): void => void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    const now = performance.now();
    if (first < 0) first = now;
    if (state === 'before' && now - first >= STALL_AFTER_MS) {
      state = 'stalling';
      // One timer ends the stall for everyone, so no request can slip in between two answers.
      setTimeout(() => {
        state = 'after';
        for (const a of held.splice(0)) a();
      }, STALL_MS);
    }
    if (state === 'stalling') {
      stalled++;
      held.push(answer);
    } else answer();
  });
  return { url: target.url, stalled: () => stalled };
}

describe('loadgen coordinated omission', () => {
  it('open loop charges the stall to every request scheduled during it; closed loop to one per connection', async () => {
    const connections = 4;
    const open = await stallingTarget();
    const openReport = await runLoad({ url: open.url, rate: 500, durationMs: 1200, warmupMs: WARMUP_MS, connections });
    const closed = await stallingTarget();
    const closedReport = await runLoad({ url: closed.url, durationMs: 1200, warmupMs: WARMUP_MS, connections });

    expect(openReport.errors.timeout + closedReport.errors.timeout).toBe(0);
    // Both saw the stall at its full length at least once.
    expect(openReport.latencyMs.max).toBeGreaterThanOrEqual(STALL_MS * 0.9);
    expect(closedReport.latencyMs.max).toBeGreaterThanOrEqual(STALL_MS * 0.9);

    // Open loop: 200 of its 600 measured requests were due during the stall, and the first half of those waited at
    // least half the stall: ~100 samples ≥ 200 ms, 1 in 6, so the 90th percentile is inside the stall.
    expect(openReport.requests).toBe(600);
    expect(openReport.latencyMs.p90).toBeGreaterThanOrEqual(STALL_MS / 2);
    // They waited in the generator's queue (4 connections were held), not in a hidden one.
    expect(openReport.queued).toBeGreaterThanOrEqual(50);

    // Closed loop: the server held one request per connection, then nothing more was sent until it answered.
    expect(closed.stalled()).toBeLessThanOrEqual(connections);
    expect(closedReport.latencyMs.count).toBeGreaterThan(200);
    expect(closedReport.latencyMs.p99).toBeLessThan(STALL_MS / 2);
  });
});
