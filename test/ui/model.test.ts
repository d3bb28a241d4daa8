/**
 * The dashboard's model and stream client, in Node (the module boots the page only in a browser): what a resync
 * snapshot and each event do to agents, jobs and tasks; scheduling latency; dedup and gap detection; balancer
 * figures merged over balancers; and the client's connect / resume / refresh protocol against a scripted socket.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

const APP = pathToFileURL(join(import.meta.dirname, '..', '..', 'src', 'ui', 'static', 'app.js')).href;

/* The slice of app.js these tests use (it is plain JS with JSDoc types). */
interface Vec {
  cpus: number;
  mem: number;
  disk: number;
  gpus: number;
}
interface Model {
  epoch: string | null;
  seq: number;
  agents: Map<string, { id: string; state: string; zone: string; cap: Vec; usage: Vec; detailed: boolean; tasks: Set<string> }>;
  jobs: Map<string, { name: string; state: string; instances: number; res: Vec; resKnown: boolean; hue: number }>;
  tasks: Map<string, { id: string; state: string; agentId?: string; healthy?: boolean; killing: boolean }>;
  pending: Set<string>;
  needsRefresh: boolean;
  latency: { summary(endSec: number, n: number): { p50: number; p99: number; count: number } | null };
  rate: { get(sec: number): number };
  applySnapshot(msg: unknown): void;
  applyEvents(events: unknown[]): 'ok' | 'gap';
  takeChanges(): { all: boolean; agents: Set<string>; tasks: Set<string>; removed: Map<string, string>; jobs: Set<string> };
  jobCounts(job: unknown): Record<string, number>;
  totals(): { cap: Vec; used: Vec; up: number; running: number; pending: number };
  services(now: number): {
    name: string;
    rps: number;
    p99Ms: number;
    active: number;
    errors: number;
    quiet: boolean;
    endpoints: { id: string; state: string; active: number; rps: number; errors: number }[];
  }[];
}
interface Status {
  state: string;
  detail: string;
  connects: number;
}
interface App {
  ClusterModel: new () => Model;
  StreamClient: new (
    model: Model,
    opts: { url: (q: string) => string; onData: () => void; onStatus: (s: Status) => void; WebSocket: unknown; random: () => number },
  ) => { start(): void; stop(): void; status: Status };
  parseCores(v: unknown): number;
  parseMebibytes(v: unknown): number;
  fmtMebibytes(v: number): string;
  hueOf(name: string): number;
}

let app: App;
beforeAll(async () => {
  app = (await import(APP)) as App;
});

const T0 = 1_700_000_000_000;

function agentView(id: string, zone: string, cpus = 8) {
  return {
    id,
    hostname: id,
    address: '127.0.0.1',
    peer: '127.0.0.1:1',
    state: 'up',
    isolation: 'simulated',
    attributes: { zone },
    resources: { cpus, mem: 16384, disk: 102400, gpus: 0, ports: '31000-31999' },
    used: { cpus: 0, mem: 0, disk: 0, gpus: 0, ports: 0 },
    tasks: 0,
    lastHeartbeatAt: T0,
    registeredAt: T0,
  };
}

function snapshot(seq = 10) {
  return {
    type: 'resync',
    epoch: 'e1',
    seq,
    requestedSeq: 0,
    reason: 'test',
    snapshot: {
      agents: [agentView('a1', 'a'), agentView('b1', 'b')],
      jobs: [{ name: 'web', spec: { type: 'service', instances: 2, resources: { cpus: '500m', mem: '1Gi', disk: 512 } }, state: 'running', createdAt: T0, updatedAt: T0, tasks: {} }],
      tasks: [
        { id: 'web.0.0', job: 'web', instance: 0, attempt: 0, state: 'lost', agentId: 'b1', ports: [], history: [] },
        { id: 'web.0.1', job: 'web', instance: 0, attempt: 1, state: 'running', agentId: 'a1', host: '127.0.0.1', ports: [31000], history: [{ state: 'pending', at: T0 }] },
        { id: 'web.1.0', job: 'web', instance: 1, attempt: 0, state: 'pending', ports: [], history: [{ state: 'pending', at: T0 + 100 }] },
      ],
      cluster: {},
    },
  };
}

describe('quantities', () => {
  it('reads cores and MiB as the master does', () => {
    expect([app.parseCores('250m'), app.parseCores('1.5'), app.parseCores(2), app.parseCores('2x')]).toEqual([0.25, 1.5, 2, Number.NaN]);
    expect([app.parseMebibytes('1.5Gi'), app.parseMebibytes('500M'), app.parseMebibytes(512), app.parseMebibytes('1Ki')]).toEqual([1536, 477, 512, 1]);
    expect([app.fmtMebibytes(512), app.fmtMebibytes(1536), app.fmtMebibytes(3 * 1024 * 1024)]).toEqual(['512Mi', '1.5Gi', '3Ti']);
  });

  it('gives jobs colours far apart, never a red, the same after a resync', () => {
    const m = new app.ClusterModel();
    m.applySnapshot(snapshot());
    const names = ['api', 'cache', 'etl', 'frontend', 'ml', 'search'];
    m.applyEvents(names.map((job, i) => ({ seq: 11 + i, at: T0, type: 'job_submitted', job, data: { type: 'service', instances: 1, cpus: 1 } })));
    const hues = ['web', ...names].map((n) => m.jobs.get(n)!.hue);
    for (const h of hues) expect(h >= 25 && h <= 335).toBe(true);
    const sorted = [...hues].sort((a, b) => a - b);
    // Seven jobs on a 310-degree wheel: no two closer than 20 degrees.
    for (let i = 1; i < sorted.length; i++) expect(sorted[i] - sorted[i - 1]).toBeGreaterThanOrEqual(20);
    m.applySnapshot(snapshot(20));
    expect(m.jobs.get('web')!.hue).toBe(hues[0]);
    for (const zone of ['a', 'b', 'us-east-1c']) expect(app.hueOf(zone)).toBe(app.hueOf(zone));
  });
});

describe('ClusterModel', () => {
  it('takes a snapshot: agents by zone, tasks on them, usage from the job spec, counts from current attempts', () => {
    const m = new app.ClusterModel();
    m.applySnapshot(snapshot());
    expect([m.epoch, m.seq]).toEqual(['e1', 10]);
    expect(m.agents.get('a1')).toMatchObject({ zone: 'a', detailed: true, cap: { cpus: 8, mem: 16384 } });
    // The lost attempt is history: only the current ones are on the page.
    expect([...m.tasks.keys()]).toEqual(['web.0.1', 'web.1.0']);
    expect([...m.agents.get('a1')!.tasks]).toEqual(['web.0.1']);
    expect(m.agents.get('a1')!.usage).toEqual({ cpus: 0.5, mem: 1024, disk: 512, gpus: 0 });
    expect([...m.pending]).toEqual(['web.1.0']);
    expect(m.jobCounts(m.jobs.get('web'))).toEqual({ running: 1, pending: 1 });
    expect(m.takeChanges().all).toBe(true);
  });

  it('follows a task from pending to placed to running to lost, with its latency, usage and job counts', () => {
    const m = new app.ClusterModel();
    m.applySnapshot(snapshot());
    m.takeChanges();
    expect(
      m.applyEvents([
        { seq: 11, at: T0 + 350, type: 'task_placed', job: 'web', taskId: 'web.1.0', agentId: 'b1', state: 'staging', data: { from: 'pending', host: '127.0.0.1', ports: [31001] } },
        { seq: 12, at: T0 + 400, type: 'task_state', job: 'web', taskId: 'web.1.0', agentId: 'b1', state: 'starting', data: { from: 'staging' } },
        { seq: 13, at: T0 + 410, type: 'task_state', job: 'web', taskId: 'web.1.0', agentId: 'b1', state: 'running', data: { from: 'starting' } },
      ]),
    ).toBe('ok');
    // Placed 250 ms after its pending transition (from the snapshot's history).
    expect(m.latency.summary(Math.floor((T0 + 350) / 1000), 1)).toEqual({ p50: 250, p99: 250, count: 1 });
    expect(m.agents.get('b1')!.usage.cpus).toBe(0.5);
    expect(m.jobCounts(m.jobs.get('web'))).toEqual({ running: 2 });
    const ch = m.takeChanges();
    expect([...ch.tasks]).toEqual(['web.1.0']);
    expect([...ch.agents]).toEqual(['b1']);

    // Its agent is lost: the task leaves the page, the agent holds nothing, a new attempt waits.
    m.applyEvents([
      { seq: 14, at: T0 + 5000, type: 'agent_lost', agentId: 'b1', data: { reason: 'silent', tasks: 1 } },
      { seq: 15, at: T0 + 5000, type: 'task_state', job: 'web', taskId: 'web.1.0', agentId: 'b1', state: 'lost', data: { from: 'running' } },
      { seq: 16, at: T0 + 5001, type: 'task_state', job: 'web', taskId: 'web.1.1', state: 'pending', data: { instance: 1, attempt: 1 } },
      // A late word about the old attempt does not move the instance back.
      { seq: 17, at: T0 + 5002, type: 'task_health', job: 'web', taskId: 'web.1.0', agentId: 'b1', data: { healthy: false } },
    ]);
    expect(m.agents.get('b1')).toMatchObject({ state: 'lost', usage: { cpus: 0, mem: 0, disk: 0, gpus: 0 } });
    expect(m.tasks.has('web.1.0')).toBe(false);
    expect(m.takeChanges().removed).toEqual(new Map([['web.1.0', 'lost']]));
    expect(m.jobCounts(m.jobs.get('web'))).toEqual({ running: 1, pending: 1 });
    expect(m.totals()).toMatchObject({ up: 1, running: 1, pending: 1, cap: { cpus: 8 }, used: { cpus: 0.5 } });

    m.applyEvents([
      { seq: 18, at: T0 + 5100, type: 'task_placed', job: 'web', taskId: 'web.1.1', agentId: 'a1', state: 'staging', data: { host: '127.0.0.1', ports: [31002] } },
      { seq: 19, at: T0 + 5200, type: 'task_state', job: 'web', taskId: 'web.1.1', agentId: 'a1', state: 'running', data: {} },
      { seq: 20, at: T0 + 5300, type: 'task_health', job: 'web', taskId: 'web.1.1', agentId: 'a1', data: { healthy: false } },
      { seq: 21, at: T0 + 5400, type: 'task_killing', job: 'web', taskId: 'web.0.1', agentId: 'a1', data: { reason: 'scaled down' } },
    ]);
    expect(m.latency.summary(Math.floor((T0 + 5100) / 1000), 1)).toEqual({ p50: 99, p99: 99, count: 1 });
    expect(m.agents.get('a1')!.usage.cpus).toBe(1);
    expect(m.tasks.get('web.1.1')!.healthy).toBe(false);
    expect(m.tasks.get('web.0.1')!.killing).toBe(true);
  });

  it('follows drains and undrains, and keeps a lost agent lost through both', () => {
    const m = new app.ClusterModel();
    m.applySnapshot(snapshot(10));
    const state = (id: string) => m.agents.get(id)!.state;
    m.applyEvents([{ seq: 11, at: T0, type: 'agent_draining', agentId: 'a1', data: { state: 'draining' } }]);
    expect(state('a1')).toBe('draining');
    m.applyEvents([{ seq: 12, at: T0, type: 'agent_undrained', agentId: 'a1', data: { state: 'up' } }]);
    expect(state('a1')).toBe('up');
    m.applyEvents([
      { seq: 13, at: T0, type: 'agent_lost', agentId: 'b1', data: { reason: 'silent', tasks: 0 } },
      { seq: 14, at: T0, type: 'agent_draining', agentId: 'b1', data: { state: 'lost' } },
    ]);
    expect(state('b1')).toBe('lost');
    m.applyEvents([{ seq: 15, at: T0, type: 'agent_undrained', agentId: 'b1', data: { state: 'lost' } }]);
    expect(state('b1')).toBe('lost');
    expect(m.takeChanges().agents).toEqual(new Set(['a1', 'b1']));
  });

  it('skips events it has seen and reports a gap', () => {
    const m = new app.ClusterModel();
    m.applySnapshot(snapshot(10));
    const e = (seq: number) => ({ seq, at: T0 + seq, type: 'job_scaled', job: 'web', data: { from: 2, to: seq } });
    expect(m.applyEvents([e(9), e(10), e(11)])).toBe('ok');
    expect(m.jobs.get('web')!.instances).toBe(11);
    expect(m.rate.get(Math.floor((T0 + 11) / 1000))).toBe(1);
    expect(m.applyEvents([e(11), e(13)])).toBe('gap');
    expect([m.seq, m.jobs.get('web')!.instances]).toEqual([13, 13]);
  });

  it('collapses a long backlog of undrawn changes into one redraw', () => {
    const m = new app.ClusterModel();
    m.applySnapshot(snapshot(10));
    m.takeChanges();
    const events = [];
    for (let i = 0; i < 11_000; i++) {
      const id = `web.${i + 2}.0`;
      events.push({ seq: 11 + 2 * i, at: T0, type: 'task_state', job: 'web', taskId: id, state: 'pending', data: { instance: i + 2, attempt: 0 } });
      events.push({ seq: 12 + 2 * i, at: T0, type: 'task_state', job: 'web', taskId: id, state: 'killed', data: { from: 'pending' } });
    }
    m.applyEvents(events.slice(0, 1000));
    expect(m.takeChanges().all).toBe(false);
    m.applyEvents(events.slice(1000));
    const ch = m.takeChanges();
    expect([ch.all, ch.tasks.size, ch.removed.size]).toEqual([true, 0, 0]);
    expect(m.tasks.size).toBe(2);
  });

  it('asks for a snapshot when an event lacks figures the page draws', () => {
    const m = new app.ClusterModel();
    m.applySnapshot(snapshot());
    // Today's agent_registered carries cpus only: the cpu bar is drawn at once, the rest needs a snapshot.
    m.applyEvents([{ seq: 11, at: T0, type: 'agent_registered', agentId: 'c1', data: { hostname: 'c1', host: '10.0.0.3', cpus: 4 } }]);
    expect(m.agents.get('c1')).toMatchObject({ state: 'up', detailed: false, cap: { cpus: 4 } });
    expect(m.needsRefresh).toBe(true);
    m.applySnapshot(snapshot(11));
    expect(m.needsRefresh).toBe(false);

    // With the figures in the event, nothing is missing.
    m.applyEvents([
      { seq: 12, at: T0, type: 'agent_registered', agentId: 'c2', data: { cpus: 2, resources: { cpus: 2, mem: 4096, disk: 1000, gpus: 1 }, attributes: { zone: 'c' } } },
      { seq: 13, at: T0, type: 'job_submitted', job: 'etl', data: { type: 'batch', instances: 3, cpus: 0.25, resources: { cpus: 0.25, mem: 256 } } },
    ]);
    expect(m.agents.get('c2')).toMatchObject({ zone: 'c', detailed: true, cap: { gpus: 1 } });
    expect(m.jobs.get('etl')).toMatchObject({ resKnown: true, instances: 3, res: { cpus: 0.25, mem: 256 } });
    expect(m.needsRefresh).toBe(false);
    m.applyEvents([{ seq: 14, at: T0, type: 'job_submitted', job: 'db', data: { type: 'service', instances: 1, cpus: 2 } }]);
    expect(m.jobs.get('db')).toMatchObject({ resKnown: false, res: { cpus: 2, mem: 0 } });
    expect(m.needsRefresh).toBe(true);
  });

  it('merges balancer reports: rates and connections add up, the worst p99 and endpoint state win, silence is quiet', () => {
    const m = new app.ClusterModel();
    m.applySnapshot(snapshot());
    const report = (balancer: string, at: number, rps: number, state: string) => ({
      seq: 0,
      at,
      type: 'balancer_stats',
      data: {
        balancer,
        intervalMs: 1000,
        refused: {},
        services: [
          {
            name: 'web',
            requests: rps,
            rps,
            active: 5,
            errors: { status_5xx: 2, reset: 1 },
            p50Ms: 1,
            p99Ms: rps / 100,
            endpoints: [{ id: 'web.0.1', address: '127.0.0.1:31000', state, weight: 8, active: 5, requests: rps, rps, errors: { connect: 1 }, ejections: 0 }],
          },
        ],
      },
    });
    m.applyEvents([
      { ...report('lb1', T0 + 1000, 100, 'up'), seq: 11 },
      { ...report('lb2', T0 + 1000, 300, 'ejected'), seq: 12 },
      // An older balancer's names, and figures left out.
      { seq: 13, at: T0 + 1000, type: 'balancer_stats', data: { services: [{ service: 'api', requestsPerSec: 7, endpoints: [{ taskId: 'api.0.0', ejected: true }] }] } },
    ]);
    const now = m.services(T0 + 1500);
    expect(now.map((s) => s.name)).toEqual(['api', 'web']);
    expect(now[0]).toMatchObject({ rps: 7, quiet: false, endpoints: [{ id: 'api.0.0', state: 'ejected' }] });
    expect(Number.isNaN(now[0].p99Ms)).toBe(true);
    expect(now[1]).toMatchObject({ rps: 400, active: 10, errors: 6, p99Ms: 3, quiet: false });
    expect(now[1].endpoints).toEqual([{ id: 'web.0.1', address: '127.0.0.1:31000', state: 'ejected', weight: 8, active: 10, rps: 400, errors: 2 }]);
    // Three intervals without a report: no requests since, but the connections still stand.
    const later = m.services(T0 + 1000 + 3001);
    expect(later[1]).toMatchObject({ rps: 0, errors: 0, active: 10, quiet: true });
  });
});

/** A scripted WebSocket: records every one the client opens; the test plays the server. */
class FakeSocket {
  static all: FakeSocket[] = [];
  readonly url: string;
  readonly protocol: string;
  closed: { code?: number; reason?: string } | null = null;
  onmessage: ((ev: { data: string }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(url: string, protocol: string) {
    this.url = url;
    this.protocol = protocol;
    FakeSocket.all.push(this);
  }
  send(m: unknown): void {
    this.onmessage?.({ data: JSON.stringify(m) });
  }
  serverClose(code: number, reason = ''): void {
    this.onclose?.({ code, reason });
  }
  close(code?: number, reason?: string): void {
    this.closed = { code, reason };
  }
  get query(): URLSearchParams {
    return new URL(this.url).searchParams;
  }
}

describe('StreamClient', () => {
  afterEach(() => {
    vi.useRealTimers();
    FakeSocket.all = [];
  });

  function client(model: Model) {
    const statuses: Status[] = [];
    const c = new app.StreamClient(model, {
      url: (q) => `ws://127.0.0.1:5050/v1/events?${q}`,
      onData: () => undefined,
      onStatus: (s) => statuses.push({ ...s }),
      WebSocket: FakeSocket,
      random: () => 0,
    });
    return { c, statuses };
  }

  it('asks for a snapshot first, resumes by seq and epoch after a close, with backoff', () => {
    vi.useFakeTimers();
    const m = new app.ClusterModel();
    const { c, statuses } = client(m);
    c.start();
    const first = FakeSocket.all[0];
    expect(first.protocol).toBe('borealis.v1.json');
    expect(first.query.get('since')).toBeNull();
    expect(first.query.get('epoch')).toBe('0');

    first.send(snapshot(10));
    first.send([{ seq: 11, at: T0, type: 'job_scaled', job: 'web', data: { to: 3 } }]);
    expect(c.status).toMatchObject({ state: 'live', connects: 1 });
    first.send({ type: 'close', code: 1001, reason: 'server closing: resume from seq 11', lastSeq: 11 });
    first.serverClose(1001, 'server closing');
    expect(c.status).toMatchObject({ state: 'reconnecting', detail: 'the master closed the stream: server closing: resume from seq 11' });

    vi.advanceTimersByTime(125); // the first delay: 250 ms with equal jitter at random() = 0
    const second = FakeSocket.all[1];
    expect([second.query.get('since'), second.query.get('epoch')]).toEqual(['11', 'e1']);
    // The master is down: the next attempt waits twice as long.
    second.serverClose(1006);
    vi.advanceTimersByTime(249);
    expect(FakeSocket.all).toHaveLength(2);
    vi.advanceTimersByTime(1);
    const third = FakeSocket.all[2];
    third.send({ type: 'hello', epoch: 'e1', seq: 11, firstSeq: 1 });
    third.send([{ seq: 12, at: T0, type: 'job_scaled', job: 'web', data: { to: 4 } }]);
    expect(c.status).toMatchObject({ state: 'live', connects: 2 });
    expect([m.seq, m.jobs.get('web')!.instances]).toEqual([12, 4]);
    expect(statuses.map((s) => s.state)).toEqual(['live', 'reconnecting', 'reconnecting', 'live']);
    c.stop();
  });

  it('takes the resync of a restarted master, and refreshes over a second socket when an event lacks figures', () => {
    vi.useFakeTimers();
    const m = new app.ClusterModel();
    const { c } = client(m);
    c.start();
    FakeSocket.all[0].send(snapshot(10));
    FakeSocket.all[0].serverClose(1001);
    vi.advanceTimersByTime(125);
    const resumed = FakeSocket.all[1];
    // A new epoch: the master answers with a snapshot, which replaces everything.
    resumed.send({ ...snapshot(3), epoch: 'e2' });
    expect([m.epoch, m.seq]).toEqual(['e2', 3]);

    resumed.send([{ seq: 4, at: T0, type: 'agent_registered', agentId: 'c1', data: { cpus: 4 } }]);
    expect(FakeSocket.all).toHaveLength(2);
    vi.advanceTimersByTime(400);
    const refresh = FakeSocket.all[2];
    expect(refresh.query.get('epoch')).toBe('0');
    // Until its snapshot arrives the main stream goes on; then the refresh takes over and the old one is closed.
    resumed.send([{ seq: 5, at: T0, type: 'job_scaled', job: 'web', data: { to: 5 } }]);
    expect(m.seq).toBe(5);
    refresh.send({ ...snapshot(6), epoch: 'e2' });
    expect(resumed.closed).not.toBeNull();
    expect([m.seq, m.needsRefresh]).toEqual([6, false]);
    expect(c.status).toMatchObject({ state: 'live', connects: 2 });
    refresh.send([{ seq: 7, at: T0, type: 'job_scaled', job: 'web', data: { to: 7 } }]);
    expect(m.jobs.get('web')!.instances).toBe(7);
    c.stop();
    expect(refresh.closed).not.toBeNull();
  });

  it('refreshes when the stream skips a seq', () => {
    vi.useFakeTimers();
    const m = new app.ClusterModel();
    const { c } = client(m);
    c.start();
    FakeSocket.all[0].send(snapshot(10));
    FakeSocket.all[0].send([{ seq: 12, at: T0, type: 'job_scaled', job: 'web', data: { to: 3 } }]);
    vi.advanceTimersByTime(400);
    expect(FakeSocket.all[1].query.get('epoch')).toBe('0');
    c.stop();
  });
});
