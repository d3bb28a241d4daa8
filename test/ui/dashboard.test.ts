/**
 * The dashboard in a real browser (Debian's chromium, driven by playwright-core): an in-process master with its API
 * on 127.0.0.1, simulated agents over the real agent WebSocket, and the page at /ui. One story, in order, because
 * each step starts from the cluster the last one left: the page fills in from the stream, a job's tasks appear on
 * the agent cards, an agent dies and its tasks move, the balancer's figures show, and the master restarts under
 * the page, which resumes. Every wait is on a DOM condition; nothing is timed.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, type Page, chromium } from 'playwright-core';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimulatedAgent } from '../../src/agent/index.js';
import type { BalancerStats, EndpointStats } from '../../src/balancer/types.js';
import { type ApiServer, startApiServer } from '../../src/api/index.js';
import { Master } from '../../src/master/index.js';
import type { TaskView } from '../../src/master/types.js';

/*
 * The callbacks given to page.waitForFunction / $$eval run in the page, where these exist. tsconfig has no DOM lib
 * (the server code must not see browser globals), so this file declares the little it uses, for itself only.
 */
interface PageElement {
  dataset: Record<string, string | undefined>;
  textContent: string | null;
  closest(selector: string): PageElement | null;
}
type HTMLElement = PageElement;
declare const document: {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): PageElement[] & { length: number };
};
declare function getComputedStyle(e: unknown): { backgroundColor: string };

const CHROMIUM = process.env.BOREALIS_CHROMIUM ?? '/usr/bin/chromium';
const ROOT = join(import.meta.dirname, '..', '..');
const ARTIFACTS = join(ROOT, 'test-artifacts');
/** Generous: a loaded 2-core CI box runs a browser, a master and this suite's neighbours at once. */
const WAIT = { timeout: 30_000 };
const MASTER_OPTS = {
  fsync: false,
  logger: pino({ level: 'silent' }),
  // A stopped agent is declared lost within ~2 s, so its tasks move while the test watches.
  heartbeatIntervalMs: 100,
  heartbeatTimeoutMs: 1_500,
  // After the restart, agents get far longer than they need to come back: the test is about the page, not loss.
  reconcileGraceMs: 15_000,
  restartBackoffMs: 50,
  placementRetryMinMs: 20,
  placementRetryMaxMs: 200,
  allocator: { workers: 1 },
};

const AGENTS = [
  { id: 'node-a1', resources: 'cpus=4,mem=8Gi,disk=40Gi,gpus=0', zone: 'a' },
  { id: 'node-a2', resources: 'cpus=8,mem=16Gi,disk=80Gi,gpus=2', zone: 'a' },
  { id: 'node-b1', resources: 'cpus=4,mem=8Gi,disk=40Gi,gpus=0', zone: 'b' },
  { id: 'node-c1', resources: 'cpus=8,mem=32Gi,disk=100Gi,gpus=0', zone: 'c' },
];

const JOBS = [
  { name: 'web', type: 'service', instances: 6, command: 'serve', placement: 'spread', resources: { cpus: 0.5, mem: '512Mi', disk: '1Gi', ports: 1 } },
  { name: 'cache', type: 'service', instances: 3, command: 'cache', resources: { cpus: 1, mem: '2Gi', disk: '4Gi' } },
  { name: 'etl', type: 'batch', instances: 8, command: 'etl', resources: { cpus: '250m', mem: '256Mi' } },
];

let dataDir = '';
let userDataDir = '';
let master: Master | null = null;
let api: ApiServer | null = null;
let port = 0;
const sims = new Map<string, SimulatedAgent>();
const stopped = new Set<string>();
let context: BrowserContext | null = null;
let page: Page;

async function startMaster(listenPort: number): Promise<void> {
  master = await Master.open({ dataDir, ...MASTER_OPTS });
  api = await startApiServer(master, { host: '127.0.0.1', port: listenPort });
  port = api.address.port;
}

async function stopMaster(): Promise<void> {
  // The API first: the page gets the stream's close message (resume from seq N) before the master goes.
  await api?.close();
  await master?.close();
  api = null;
  master = null;
}

function startAgent(a: { id: string; resources: string; zone: string }, i: number): SimulatedAgent {
  const sim = SimulatedAgent.start({
    master: `127.0.0.1:${port}`,
    agentId: a.id,
    resources: a.resources,
    ports: `${46_000 + i * 100}-${46_000 + i * 100 + 99}`,
    attributes: `zone=${a.zone}`,
    // Back quickly after the master restarts.
    reconnect: { initialMs: 50, maxMs: 300 },
  });
  sims.set(a.id, sim);
  return sim;
}

async function post(path: string, body: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
}

async function tasks(job: string): Promise<TaskView[]> {
  const r = await fetch(`http://127.0.0.1:${port}/v1/tasks?job=${job}`);
  return ((await r.json()) as { tasks: TaskView[] }).tasks;
}

/** Chips of `job` in state `state` on cards of agents in state `agentState`, as the page shows them now. */
function chipsOn(job: string, state: string, agentState = 'up'): Promise<{ task: string; agent: string }[]> {
  return page.$$eval(
    `.agent[data-state="${agentState}"] .task[data-job="${job}"][data-state="${state}"]`,
    (els) => els.map((e) => ({ task: (e as HTMLElement).dataset.taskId ?? '', agent: (e.closest('.agent') as HTMLElement).dataset.agentId ?? '' })),
  );
}

/** Waits until the page shows exactly `n` chips of `job` running on cards of agents that are up. */
async function waitRunning(job: string, n: number): Promise<void> {
  await page.waitForFunction(
    ([j, count]) => document.querySelectorAll(`.agent[data-state="up"] .task[data-job="${j}"][data-state="running"]:not(.leaving)`).length === count,
    [job, n] as const,
    WAIT,
  );
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no chromium at ${CHROMIUM}: install Debian's chromium (apt-get install chromium), as .ci/run does, or set BOREALIS_CHROMIUM`);
  }
  dataDir = await mkdtemp(join(tmpdir(), 'borealis-ui-master-'));
  userDataDir = await mkdtemp(join(tmpdir(), 'borealis-ui-chromium-'));
  await startMaster(0);
  await Promise.all(AGENTS.map((a, i) => startAgent(a, i).whenRegistered()));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1440, height: 1000 },
  });
  page = context.pages()[0] ?? (await context.newPage());
});

afterAll(async () => {
  await context?.close();
  await Promise.all([...sims.values()].map((s) => s.stop()));
  await stopMaster();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
});

describe('the dashboard at /ui, in chromium', () => {
  it('loads, goes live from the stream and shows every agent in its zone', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    const res = await page.goto(`http://127.0.0.1:${port}/ui`);
    expect(res?.status()).toBe(200);
    await page.waitForSelector('#conn[data-status="live"]', WAIT);
    await page.waitForFunction((n) => document.querySelectorAll('.agent[data-state="up"]').length === n, AGENTS.length, WAIT);
    const zones = await page.$$eval('.zone', (els) => els.map((z) => [(z as HTMLElement).dataset.zone, z.querySelectorAll('.agent').length]));
    expect(zones).toEqual([
      ['a', 2],
      ['b', 1],
      ['c', 1],
    ]);
    // The snapshot carries every figure: node-a2's gpu bar shows its 2 gpus.
    expect(await page.textContent('.agent[data-agent-id="node-a2"] .bar[data-res="gpus"] .bar-value')).toBe('0 / 2');
    expect(errors).toEqual([]);
  });

  it('shows tasks on the agent cards as they are placed, coloured by job, with job counts and usage', async () => {
    for (const spec of JOBS) expect((await post('/v1/jobs', spec)).status).toBe(201);
    for (const spec of JOBS) await waitRunning(spec.name, spec.instances);

    // What the page shows is where the master put them.
    const shown = new Map((await chipsOn('web', 'running')).map((c) => [c.task, c.agent]));
    for (const t of (await tasks('web')).filter((t) => t.state === 'running')) expect(shown.get(t.id)).toBe(t.agentId);

    await page.waitForFunction(() => (document.querySelector('.job[data-job="web"]') as HTMLElement | null)?.dataset.running === '6', undefined, WAIT);
    expect(await page.textContent('.job[data-job="web"] .job-count')).toBe('6/6');
    // Chips of one job share a colour; different jobs differ.
    const colour = (job: string) => page.$eval(`.task[data-job="${job}"]`, (e) => getComputedStyle(e).backgroundColor);
    expect(await colour('web')).not.toBe(await colour('cache'));

    // Usage follows the tasks: the cards' cpu figures add up to what the jobs asked for (6 x 0.5 + 3 x 1 + 8 x 0.25).
    await page.waitForFunction(
      () => {
        let sum = 0;
        for (const v of document.querySelectorAll('.agent .bar[data-res="cpus"] .bar-value')) sum += Number((v.textContent ?? '').split(' / ')[0]);
        return Math.abs(sum - 8) < 1e-9;
      },
      undefined,
      WAIT,
    );
    // The job's tasks were placed: the latency chart has samples.
    await page.waitForFunction(() => /placed in 30 s/.test(document.querySelector('#latency-value small')?.textContent ?? ''), undefined, WAIT);
  });

  it("moves a lost agent's tasks to the others", async () => {
    const before = await chipsOn('web', 'running');
    const victim = before[0].agent;
    const moved = before.filter((c) => c.agent === victim).map((c) => c.task);
    expect(moved.length).toBeGreaterThan(0);

    stopped.add(victim);
    await sims.get(victim)!.stop(); // the host dies: no goodbye, the master notices the silence
    await page.waitForSelector(`.agent[data-agent-id="${victim}"][data-state="lost"]`, WAIT);
    await waitRunning('web', 6);
    const after = await chipsOn('web', 'running');
    expect(after.every((c) => c.agent !== victim)).toBe(true);
    // The replacements are new attempts of the same instances, on other agents.
    const ids = new Set(after.map((c) => c.task));
    for (const id of moved) expect(ids.has(id)).toBe(false);
    expect(await page.$$(`.agent[data-agent-id="${victim}"] .task:not(.leaving)`)).toHaveLength(0);
    await waitRunning('cache', 3);
  });

  it('shows an agent that joins later with its figures and zone (the page fetches them with a snapshot)', async () => {
    await startAgent({ id: 'node-d1', resources: 'cpus=2,mem=4Gi,disk=20Gi,gpus=1', zone: 'd' }, AGENTS.length).whenRegistered();
    await page.waitForSelector('.zone[data-zone="d"] .agent[data-agent-id="node-d1"][data-state="up"][data-detailed="true"]', WAIT);
    expect(await page.textContent('.agent[data-agent-id="node-d1"] .bar[data-res="mem"] .bar-value')).toBe('0Mi / 4Gi');
    expect(await page.textContent('.agent[data-agent-id="node-d1"] .bar[data-res="gpus"] .bar-value')).toBe('0 / 1');
    await page.waitForSelector('#conn[data-status="live"]', WAIT);
  });

  it('shows the balancer figures per service and endpoint, summed over balancers', async () => {
    const running = (await tasks('web')).filter((t) => t.state === 'running');
    const endpoint = (t: TaskView, i: number, share: number): EndpointStats => ({
      id: t.id,
      address: t.endpoint ?? '',
      state: i === 5 ? 'ejected' : 'up',
      weight: 1,
      active: (3 + i * 2) * share,
      requests: 300 * share,
      rps: (300 + i * 7) * share,
      errors: i === 2 ? { status_5xx: 3 * share, reset: share } : {},
      ejections: i === 5 ? 1 : 0,
    });
    const report = (balancer: string, share: number): BalancerStats => ({
      balancer,
      intervalMs: 1000,
      services: [
        {
          name: 'web',
          requests: 1800 * share,
          rps: 920 * share,
          active: 20 * share,
          errors: { status_5xx: 3 * share, reset: share },
          p50Ms: 2.1,
          p99Ms: 10 + share,
          endpoints: running.map((t, i) => endpoint(t, i, share)),
        },
      ],
      refused: {},
    });
    // Two balancers front the cluster; these events stand in for their reports (src/balancer publishes them the
    // same way): the page only reads the event.
    master!.events.publish({ type: 'balancer_stats', data: report('127.0.0.1:8080', 1) as unknown as Record<string, unknown> });
    master!.events.publish({ type: 'balancer_stats', data: report('127.0.0.1:8081', 2) as unknown as Record<string, unknown> });
    // A report from a balancer of another version, with fields missing: drawn with what is there.
    master!.events.publish({ type: 'balancer_stats', data: { balancer: 'old', services: [{ name: 'cache', endpoints: [{ id: 'cache.0.0' }] }] } });

    await page.waitForSelector('#services-meta:text("3 load balancers")', WAIT);
    await page.waitForFunction((n) => document.querySelectorAll('.service[data-service="web"] .endpoint[data-task-id]').length === n, running.length, WAIT);
    // 920 + 1840 req/s; 20 + 40 connections; the worse p99 of the two.
    const figs = await page.textContent('.service[data-service="web"] .service-figs');
    expect(figs).toContain('2.8k');
    expect(figs).toContain('60conn');
    expect(figs).toContain('12 ms');
    expect(await page.$$('.service[data-service="web"] .endpoint[data-state="ejected"]')).toHaveLength(1);
    const third = await page.$$eval(`.service[data-service="web"] .endpoint[data-task-id="${running[2].id}"] .ep-num`, (els) => els.map((e) => e.textContent));
    expect(third).toEqual([String((3 + 4) * 3), String((300 + 14) * 3), String(4 * 3)]);
    expect(await page.textContent('.service[data-service="cache"] .service-figs')).toContain('–');
  });

  it('resumes after a master restart on the same data dir: reconnects, goes live, still shows the tasks', async () => {
    const connects = Number(await page.getAttribute('#conn', 'data-connects'));
    await stopMaster();
    await page.waitForSelector('#conn[data-status="reconnecting"]', WAIT);

    await startMaster(port);
    await page.waitForFunction((n) => Number((document.querySelector('#conn') as HTMLElement).dataset.connects) > n, connects, WAIT);
    await page.waitForSelector('#conn[data-status="live"]', WAIT);
    // The surviving agents come back, with their figures and zones, and the tasks are still where they run.
    const survivors = [...sims.keys()].filter((id) => !stopped.has(id));
    await page.waitForFunction(
      (ids) => ids.every((id) => document.querySelector(`.agent[data-agent-id="${id}"][data-state="up"][data-detailed="true"]`) !== null),
      survivors,
      WAIT,
    );
    await waitRunning('web', 6);
    await waitRunning('cache', 3);
    const shown = new Map((await chipsOn('web', 'running')).map((c) => [c.task, c.agent]));
    for (const t of (await tasks('web')).filter((t) => t.state === 'running')) expect(shown.get(t.id)).toBe(t.agentId);

    await mkdir(ARTIFACTS, { recursive: true });
    // Let the charts take a tick so the picture has them drawn.
    await page.waitForFunction(() => /events\/s/.test(document.querySelector('#rate-value small')?.textContent ?? ''), undefined, WAIT);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
  });
});
