import { describe, expect, it } from 'vitest';
import { EventBus } from '../../src/events/bus.js';

describe('EventBus', () => {
  it('numbers events 1, 2, 3... and delivers them to subscribers in order', () => {
    const bus = new EventBus();
    const seen: number[] = [];
    const off = bus.subscribe((e) => seen.push(e.seq));
    for (let i = 0; i < 5; i++) bus.publish({ type: 'job_submitted', job: `j${i}` });
    off();
    off(); // idempotent
    bus.publish({ type: 'job_killed', job: 'j0' });
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    expect(bus.lastSeq).toBe(6);
    expect(bus.subscribers).toBe(0);
  });

  it('since(seq) returns the events after seq, [] when caught up, null once they left the ring', () => {
    const bus = new EventBus({ capacity: 4 });
    expect(bus.since(0)).toEqual([]);
    for (let i = 0; i < 6; i++) bus.publish({ type: 'task_state', taskId: `t${i}`, at: 1000 + i });
    expect(bus.firstSeq).toBe(3);
    expect(bus.since(2)!.map((e) => e.seq)).toEqual([3, 4, 5, 6]);
    expect(bus.since(4)!.map((e) => e.taskId)).toEqual(['t4', 't5']);
    expect(bus.since(4)![0]!.at).toBe(1004);
    expect(bus.since(6)).toEqual([]);
    expect(bus.since(1)).toBeNull();
    expect(bus.since(0)).toBeNull();
    expect(() => bus.since(-1)).toThrowError(expect.objectContaining({ code: 'BRL_ERR_INVALID_ARGUMENT' }));
  });

  it('at(seq) reads one event in the ring without copying, undefined outside it', () => {
    const bus = new EventBus({ capacity: 4 });
    expect(bus.at(1)).toBeUndefined();
    for (let i = 0; i < 6; i++) bus.publish({ type: 'task_state', taskId: `t${i}` });
    expect(bus.at(2)).toBeUndefined();
    expect(bus.at(3)).toBe(bus.since(2)![0]);
    expect(bus.at(6)!.taskId).toBe('t5');
    expect(bus.at(7)).toBeUndefined();
  });

  it('keeps delivering when a listener throws, and reports it', () => {
    const errors: unknown[] = [];
    const bus = new EventBus({ onListenerError: (err) => errors.push(err) });
    const seen: number[] = [];
    bus.subscribe(() => {
      throw new Error('boom');
    });
    bus.subscribe((e) => seen.push(e.seq));
    bus.publish({ type: 'agent_lost', agentId: 'a' });
    expect(seen).toEqual([1]);
    expect(errors).toHaveLength(1);
  });

  it('a listener added during delivery starts with the next event', () => {
    const bus = new EventBus();
    const late: number[] = [];
    bus.subscribe(() => {
      if (late.length === 0 && bus.subscribers === 1) bus.subscribe((e) => late.push(e.seq));
    });
    bus.publish({ type: 'job_submitted' });
    bus.publish({ type: 'job_submitted' });
    expect(late).toEqual([2]);
  });

  it('refuses a bad capacity', () => {
    expect(() => new EventBus({ capacity: 0 })).toThrowError(expect.objectContaining({ code: 'BRL_ERR_INVALID_ARGUMENT' }));
  });
});
