import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../src/master/backoff.js';
import type { JournalEntry } from '../../src/master/journal-entries.js';
import { Outbox } from '../../src/master/outbox.js';
import { planReconcile } from '../../src/master/reconcile.js';
import { Store } from '../../src/master/store.js';
import { canTransition, isStaleProgress, isTerminal } from '../../src/master/task-states.js';
import { TASK_STATES, taskStateToWire } from '../../src/proto/index.js';
import { service } from './helpers.js';

describe('task state machine', () => {
  it('allows the lifecycle and nothing out of a terminal state', () => {
    const path = ['pending', 'staging', 'starting', 'running', 'finished'] as const;
    for (let i = 1; i < path.length; i++) expect(canTransition(path[i - 1]!, path[i]!)).toBe(true);
    expect(canTransition('pending', 'killed')).toBe(true);
    for (const to of ['failed', 'lost', 'running', 'starting'] as const) expect(canTransition('pending', to)).toBe(false);
    for (const from of ['staging', 'starting', 'running'] as const) {
      for (const to of ['failed', 'killed', 'lost', 'finished'] as const) expect(canTransition(from, to)).toBe(true);
    }
    expect(canTransition('running', 'starting')).toBe(false);
    expect(canTransition('running', 'staging')).toBe(false);
    for (const from of TASK_STATES.filter(isTerminal)) for (const to of TASK_STATES) expect(canTransition(from, to)).toBe(false);
  });

  it('calls an older progress state (a resend) stale, and nothing else', () => {
    expect(isStaleProgress('running', 'starting')).toBe(true);
    expect(isStaleProgress('running', 'staging')).toBe(true);
    expect(isStaleProgress('starting', 'staging')).toBe(true);
    expect(isStaleProgress('starting', 'running')).toBe(false); // progress
    expect(isStaleProgress('running', 'running')).toBe(false); // a plain repeat
    expect(isStaleProgress('running', 'pending')).toBe(false); // never an agent's to report: illegal
    expect(isStaleProgress('lost', 'starting')).toBe(false); // the master closed it: the agent must kill it
    expect(isStaleProgress('running', 'killed')).toBe(false);
  });
});

describe('backoffDelay', () => {
  it('doubles per consecutive failure up to the cap', () => {
    expect([0, 1, 2, 3, 4, 10].map((n) => backoffDelay(n, 100, 1_000))).toEqual([0, 100, 200, 400, 800, 1_000]);
    expect(backoffDelay(10_000, 100, 60_000)).toBe(60_000);
    expect(backoffDelay(3, 0, 1_000)).toBe(0);
  });
});

describe('Outbox', () => {
  it('runs effects in order, each after every append queued before it', async () => {
    const failures: unknown[] = [];
    const box = new Outbox(
      (err) => failures.push(err),
      (err) => failures.push(err),
    );
    const log: string[] = [];
    box.effect(() => log.push('idle: at once'));
    let release1!: () => void;
    let fail2!: (e: Error) => void;
    box.append(new Promise<void>((r) => (release1 = r)));
    box.effect(() => log.push('after 1'));
    box.append(new Promise<void>((_, rej) => (fail2 = rej)));
    box.effect(() => log.push('after 2'));
    const barrier = box.barrier().then(() => log.push('barrier'));
    fail2(new Error('disk'));
    await new Promise((r) => setImmediate(r));
    expect(log).toEqual(['idle: at once']); // append 1 still in flight holds everything
    release1();
    await barrier;
    expect(log).toEqual(['idle: at once', 'after 1', 'after 2', 'barrier']);
    expect(failures).toEqual([new Error('disk')]);
    expect(box.idle).toBe(true);
  });
});

function storeWith(entries: JournalEntry[]): Store {
  const s = new Store();
  for (const e of entries) expect(s.apply(e)).toBe(true);
  return s;
}

describe('Store', () => {
  const spec = service('web', 2);
  const entries: JournalEntry[] = [
    { t: 'job', at: 1, spec },
    { t: 'tasks', at: 2, job: 'web', list: [[0, 0], [1, 0]] },
    { t: 'assign', at: 3, list: [['web.0.0', 'a1', '10.0.0.1', [31000]], ['web.1.0', 'a2', '10.0.0.2', [31000]]] },
    { t: 'state', at: 4, id: 'web.0.0', state: 'running' },
    { t: 'state', at: 5, id: 'web.1.0', state: 'failed', reason: 'exited', exitCode: 1 },
    { t: 'tasks', at: 6, job: 'web', list: [[1, 1]] },
    { t: 'drain', at: 7, agent: 'a2' },
  ];

  it('builds jobs, slots, tasks and the per-agent index from entries', () => {
    const s = storeWith(entries);
    const slot = s.jobs.get('web')!.slots.get(1)!;
    expect(slot.current).toBe('web.1.1');
    expect(slot.failures).toBe(1);
    expect(slot.nextAttempt).toBe(2);
    expect([...slot.active]).toEqual(['web.1.1']);
    expect(s.tasksOnAgent('a1').map((t) => t.id)).toEqual(['web.0.0']);
    expect(s.tasksOnAgent('a2')).toEqual([]);
    expect(s.tasks.get('web.1.0')!.history.map((h) => h.state)).toEqual(['pending', 'staging', 'failed']);
    expect([...s.drained]).toEqual(['a2']);
  });

  it('round-trips through a snapshot', () => {
    const s = storeWith(entries);
    const copy = new Store();
    copy.load(JSON.parse(JSON.stringify(s.toSnapshot())));
    expect(copy.toSnapshot()).toEqual(s.toSnapshot());
    expect(copy.tasksOnAgent('a1').map((t) => t.id)).toEqual(['web.0.0']);
    expect([...copy.jobs.get('web')!.slots.get(1)!.active]).toEqual(['web.1.1']);
  });

  it('skips entries that do not fit the state instead of throwing', () => {
    const s = new Store();
    expect(s.apply({ t: 'state', at: 1, id: 'nope.0.0', state: 'running' })).toBe(false);
    expect(s.apply({ t: 'scale', at: 1, job: 'nope', instances: 3 })).toBe(false);
    expect(s.apply({ t: 'bogus' } as unknown as JournalEntry)).toBe(false);
  });

  it('keeps a bounded number of ended attempts per instance', () => {
    const s = storeWith([{ t: 'job', at: 1, spec }]);
    for (let a = 0; a < 20; a++) {
      s.apply({ t: 'tasks', at: 2, job: 'web', list: [[0, a]] });
      s.apply({ t: 'state', at: 3, id: `web.0.${a}`, state: 'killed' });
    }
    const slot = s.jobs.get('web')!.slots.get(0)!;
    expect(slot.retained.length).toBeLessThanOrEqual(6);
    expect(slot.retained).toContain('web.0.19');
    expect(slot.nextAttempt).toBe(20);
    expect(s.tasks.has('web.0.0')).toBe(false);
  });
});

describe('planReconcile', () => {
  const s = storeWith([
    { t: 'job', at: 1, spec: service('web', 3) },
    { t: 'tasks', at: 2, job: 'web', list: [[0, 0], [1, 0], [2, 0]] },
    { t: 'assign', at: 3, list: [['web.0.0', 'a1', 'h', []], ['web.1.0', 'a1', 'h', []], ['web.2.0', 'a2', 'h', []]] },
    { t: 'kill', at: 4, ids: ['web.1.0'] },
  ]);
  const lookup = (id: string) => s.tasks.get(id);
  const run = (id: string) => ({ taskId: id, state: taskStateToWire('running') });

  it('keeps what both know, loses what the agent lacks, kills what the master does not want there', () => {
    const plan = planReconcile('a1', s.tasksOnAgent('a1'), [run('web.1.0'), run('web.2.0'), run('ghost.0.0'), { taskId: 'old.0.0', state: taskStateToWire('finished') }], lookup, false);
    expect(plan.keep.map((k) => k.task.id)).toEqual(['web.1.0']);
    expect(plan.missing.map((t) => t.id)).toEqual(['web.0.0']);
    // web.1.0: kept until it reports killed, but the kill is repeated; web.2.0 belongs to a2; ghost is unknown.
    expect(plan.kill).toEqual(['web.1.0', 'web.2.0', 'ghost.0.0']);
  });

  it('kills everything an agent reports when it comes back after being declared lost', () => {
    const plan = planReconcile('a1', [], [run('web.0.0')], lookup, true);
    expect(plan).toEqual({ keep: [], missing: [], kill: ['web.0.0'] });
  });
});
