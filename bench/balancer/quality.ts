/**
 * Balancing quality: where the requests went, counted by the backends themselves.
 * - slow-backend: four equal backends, one answering 20 ms late. Round-robin would send it 25% of
 *   the requests; least-connections should notice its requests pile up and send it under 10%.
 * - weights: four equal backends weighted 1:2:3:4; the shares should be within 3 points of
 *   10/20/30/40%.
 * Borealis is the subject; HAProxy and nginx run the same cases as a reference when installed.
 */
import { startCountingBackends } from './backends.js';
import { type RunContext, errorText, targetAlive } from './context.js';
import { type QualityRow, round2 } from './rows.js';
import { type TargetName, skipReason, startTarget } from './targets.js';

interface QualityCase {
  name: QualityRow['case'];
  delaysMs: number[];
  weights: number[];
  goal: string;
  /** The number the goal is about, from the shares in percent. */
  value(sharesPct: readonly number[]): number;
  met(value: number): boolean;
}

/** 20 ms: two orders of magnitude above a local backend's answer time, as in the issue. */
const SLOW_MS = 20;
const SLOW_MAX_SHARE_PCT = 10;
const WEIGHT_TOLERANCE_PTS = 3;

const QUALITY_CASES: readonly QualityCase[] = [
  {
    name: 'slow-backend',
    delaysMs: [0, 0, 0, SLOW_MS],
    weights: [1, 1, 1, 1],
    goal: `slow backend's share < ${SLOW_MAX_SHARE_PCT}% (round-robin: 25%)`,
    value: (s) => s[3]!,
    met: (v) => v < SLOW_MAX_SHARE_PCT,
  },
  {
    name: 'weights',
    delaysMs: [0, 0, 0, 0],
    weights: [1, 2, 3, 4],
    goal: `every share within ±${WEIGHT_TOLERANCE_PTS} points of 10/20/30/40%`,
    value: (s) => Math.max(...s.map((x, i) => Math.abs(x - (10 * (i + 1))))),
    met: (v) => v <= WEIGHT_TOLERANCE_PTS,
  },
];

export const QUALITY_TARGETS: readonly TargetName[] = ['borealis', 'haproxy', 'nginx'];

export async function qualityPhase(ctx: RunContext, targets: readonly TargetName[], durationSec: number): Promise<QualityRow[]> {
  const closed = ctx.closed!;
  const rows: QualityRow[] = [];
  const runnable = targets.filter((t) => skipReason(t, ctx.inst) === null);
  if (runnable.length === 0) return rows;
  for (const c of QUALITY_CASES) {
    const backends = await startCountingBackends(ctx.sup, `counting-backends-${c.name}`, c.delaysMs, c.weights, ctx.layout.clients);
    for (const u of backends.upstreams) ctx.ports.add(u.port);
    try {
      for (const name of runnable) {
        let target;
        try {
          target = await startTarget(name, { sup: ctx.sup, inst: ctx.inst, dir: ctx.dir, cpus: ctx.layout.proxy, tag: c.name }, backends.upstreams);
          ctx.ports.add(target.port);
          const before = await backends.counts();
          const r = await closed.run(ctx.sup, { url: target.url, connections: ctx.connections, durationSec, cpus: ctx.layout.clients });
          if (!targetAlive(target)) throw new Error(`${name} exited during the run`);
          const after = await backends.counts();
          const requests = after.map((n, i) => n - before[i]!);
          const total = requests.reduce((a, b) => a + b, 0);
          if (total === 0) throw new Error('no request reached a backend');
          const sharesPct = requests.map((n) => round2((100 * n) / total));
          const value = round2(c.value(sharesPct));
          const row: QualityRow = {
            scenario: 'balancer',
            phase: 'quality',
            case: c.name,
            target: name,
            transport: target.transport,
            connections: ctx.connections,
            tool: closed.name,
            delaysMs: c.delaysMs,
            weights: c.weights,
            requests,
            sharesPct,
            value,
            goal: c.goal,
            met: c.met(value),
            rps: r.rps,
            errors: r.errors,
            errorKinds: r.errorKinds,
          };
          rows.push(row);
          ctx.emit(row);
          ctx.log(`quality ${c.name} via ${name}: shares ${sharesPct.join('/')}%`);
        } catch (err) {
          ctx.emit({ scenario: 'balancer', phase: 'quality', target: name, error: `${c.name}: ${errorText(err)}` });
        } finally {
          if (target?.proc) await ctx.sup.stop(target.proc);
        }
      }
    } finally {
      for (const p of backends.procs) await ctx.sup.stop(p);
    }
  }
  return rows;
}
