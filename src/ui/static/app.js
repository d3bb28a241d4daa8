// @ts-check
/**
 * The Borealis dashboard: one module, no framework, no build step. It learns everything from the master's event
 * stream (GET /v1/events, subprotocol borealis.v1.json; src/proto/events.ts has the format): a resync snapshot
 * first, then events, which a ClusterModel folds into agents, jobs, tasks and series. The View draws the model's
 * changes at most once per animation frame, so a burst of a thousand placements costs one layout, not a thousand.
 *
 * The model and the stream client touch no DOM: the module can be imported by Node for tests, and only boots the
 * page when it runs in one.
 */

// ---- wire and lifecycle ------------------------------------------------------------------------------------

const STREAM_PATH = '/v1/events';
const SUBPROTOCOL = 'borealis.v1.json';
/**
 * An epoch no master has (they are UUIDs): asking for it makes the stream answer with a resync snapshot of the
 * current state, which is how a client that holds no state yet (or doubts it) gets one.
 */
const SNAPSHOT_EPOCH = '0';
/** First reconnect after 250 ms, doubling to 5 s: quick after a blip, gentle on a master that is down. */
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 5_000;
/**
 * When an event lacks figures the page needs (an agent that registered after the snapshot: its mem, disk and
 * zone), a fresh snapshot is fetched over the stream. Requests within 400 ms share one, and at most one every 3 s,
 * so a hundred agents registering at once cost a snapshot or two.
 */
const REFRESH_DEBOUNCE_MS = 400;
const REFRESH_MIN_INTERVAL_MS = 3_000;

// ---- presentation ------------------------------------------------------------------------------------------

/** Two minutes of per-second history: long enough to see a trend, short enough to read a single burst. */
const HISTORY_SECONDS = 120;
/** Latency samples kept per second (reservoir-sampled past it): p99 of 512 samples is stable enough to draw. */
const LATENCY_SAMPLES_PER_SECOND = 512;
const FEED_SIZE = 40;
/** Matches the `leave` animation in style.css. */
const LEAVE_MS = 450;
/**
 * A balancer reports only when something changed; one silent for 3 intervals (at least 3 s) has seen no requests,
 * so its last rates no longer hold.
 */
const QUIET_INTERVALS = 3;
const QUIET_MIN_MS = 3_000;
/**
 * Task changes remembered for the next frame; past this many (a hidden tab draws nothing for hours while batch
 * jobs churn) the next frame redraws everything rather than replaying every change.
 */
const MAX_PENDING_CHANGES = 20_000;
/** Seconds of a skipped cpu sample filled with the next one (see View.tick). */
const CPU_FILL_SECONDS = 5;
const SPARK_COLOR = '#5eead4';
/** Chips drawn in the pending tray; past it the tray says how many more. */
const PENDING_TRAY_MAX = 240;

const ON_AGENT = new Set(['staging', 'starting', 'running']);
const TERMINAL = new Set(['finished', 'failed', 'killed', 'lost']);
/** The order of the segments in a job's bar: from waiting to done. */
const STATE_ORDER = ['pending', 'staging', 'starting', 'running', 'finished', 'failed', 'killed', 'lost'];
const RESOURCES = /** @type {const} */ (['cpus', 'mem', 'disk', 'gpus']);

/**
 * @typedef {'cpus'|'mem'|'disk'|'gpus'} ResourceName
 * @typedef {{cpus: number, mem: number, disk: number, gpus: number}} Vec  cpus in cores, mem and disk in MiB
 * @typedef {{seq: number, at: number, type: string, job?: string, taskId?: string, agentId?: string, state?: string, data?: Record<string, any>}} ClusterEvent
 * @typedef {{id: string, hostname: string, host: string, state: string, zone: string, attributes: Record<string, string>,
 *   cap: Vec, detailed: boolean, tasks: Set<string>, usage: Vec}} Agent
 * @typedef {{name: string, type: string, state: string, instances: number, res: Vec, resKnown: boolean,
 *   slots: Map<number, {attempt: number, state: string}>, hue: number}} Job
 * @typedef {{id: string, job: string, instance: number, attempt: number, state: string, agentId?: string, host?: string,
 *   ports: number[], healthy?: boolean, killing: boolean, pendingAt?: number}} Task
 * @typedef {{name: string, rps: number, p50Ms: number, p99Ms: number, active: number, errors: number, endpoints: Endpoint[],
 *   quiet: boolean}} ServiceStats  a service's figures; NaN where a report left a figure out
 * @typedef {{id: string, address: string, state: string, weight: number, active: number, rps: number, errors: number}} Endpoint
 * @typedef {{at: number, intervalMs: number, services: ServiceStats[]}} BalancerReport
 * @typedef {{all: boolean, agents: Set<string>, jobs: Set<string>, tasks: Set<string>, removed: Map<string, string>,
 *   pending: boolean, services: boolean, feed: boolean}} Changes
 */

// ---- quantities --------------------------------------------------------------------------------------------

const NUMBER_RE = /^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)\s*$/;
/** @type {Record<string, number>} */
const MIB_PER_UNIT = { '': 1, Ki: 1 / 1024, Mi: 1, Gi: 1024, Ti: 1024 ** 2, Pi: 1024 ** 3, k: 1e3 / 2 ** 20, K: 1e3 / 2 ** 20, M: 1e6 / 2 ** 20, G: 1e9 / 2 ** 20, T: 1e12 / 2 ** 20, P: 1e15 / 2 ** 20, B: 1 / 2 ** 20, b: 1 / 2 ** 20 };

/** Cores from a job spec's `cpus` ("1.5", 1.5, "500m"), as src/resources/units.ts reads them; NaN if unreadable. */
export function parseCores(/** @type {unknown} */ raw) {
  if (typeof raw === 'number') return raw;
  if (typeof raw !== 'string') return Number.NaN;
  const m = NUMBER_RE.exec(raw);
  if (!m || (m[2] !== '' && m[2] !== 'm')) return Number.NaN;
  return m[2] === 'm' ? Number(m[1]) / 1000 : Number(m[1]);
}

/** MiB from "512Mi", "2Gi", "1.5G" or a bare number (already MiB), rounded up as the master does; NaN if unreadable. */
export function parseMebibytes(/** @type {unknown} */ raw) {
  if (typeof raw === 'number') return Math.ceil(raw - 1e-9);
  if (typeof raw !== 'string') return Number.NaN;
  const m = NUMBER_RE.exec(raw);
  if (!m || !(m[2] in MIB_PER_UNIT)) return Number.NaN;
  return Math.ceil(Number(m[1]) * MIB_PER_UNIT[m[2]] - 1e-9);
}

/** A job spec's resources per instance as a Vec (absent fields are 0, as the master reads them). */
function specResources(/** @type {any} */ r) {
  const v = { cpus: 0, mem: 0, disk: 0, gpus: 0 };
  if (!r || typeof r !== 'object') return null;
  if (r.cpus !== undefined) v.cpus = parseCores(r.cpus);
  if (r.mem !== undefined) v.mem = parseMebibytes(r.mem);
  if (r.disk !== undefined) v.disk = parseMebibytes(r.disk);
  if (r.gpus !== undefined) v.gpus = Number(r.gpus);
  return RESOURCES.every((k) => Number.isFinite(v[k])) ? v : null;
}

const num = (/** @type {unknown} */ v, fallback = 0) => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);
const zero = () => ({ cpus: 0, mem: 0, disk: 0, gpus: 0 });

/** "0.5", "12", "1.25": cores without trailing zeros. */
function fmtCores(/** @type {number} */ c) {
  return c >= 100 ? String(Math.round(c)) : String(Math.round(c * 100) / 100);
}

/** MiB as the shortest readable binary unit: "512Mi", "1.5Gi", "2Ti". */
export function fmtMebibytes(/** @type {number} */ mib) {
  if (mib >= 1024 * 1024) return `${trim(mib / (1024 * 1024))}Ti`;
  if (mib >= 1024) return `${trim(mib / 1024)}Gi`;
  return `${Math.round(mib)}Mi`;
}

function trim(/** @type {number} */ n) {
  return n >= 100 ? String(Math.round(n)) : String(Math.round(n * 10) / 10);
}

function fmtQuantity(/** @type {ResourceName} */ k, /** @type {number} */ v) {
  return k === 'mem' || k === 'disk' ? fmtMebibytes(v) : k === 'cpus' ? fmtCores(v) : String(Math.round(v));
}

function fmtMs(/** @type {number} */ ms) {
  if (!Number.isFinite(ms)) return '–';
  if (ms >= 10_000) return `${Math.round(ms / 1000)} s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 10) return `${Math.round(ms)} ms`;
  return `${ms.toFixed(1)} ms`;
}

function fmtRate(/** @type {number} */ r) {
  if (!Number.isFinite(r)) return '–';
  if (r >= 10_000) return `${Math.round(r / 1000)}k`;
  if (r >= 1000) return `${(r / 1000).toFixed(1)}k`;
  return r >= 10 ? String(Math.round(r)) : String(Math.round(r * 10) / 10);
}

/**
 * Hues for names. Reds (335..25) are left out everywhere: on this page red means trouble (failed, lost, ejected, a
 * full resource).
 */
const HUE_MIN = 25;
const HUE_SPAN = 310;

/**
 * The i-th job's hue: steps of the golden ratio around the wheel keep any number of jobs as far apart as they can
 * be, which a hash of the name does not (a handful of jobs often lands in one colour). Jobs are numbered as the
 * page first sees them, and a snapshot lists them by name, so the same jobs get the same colours on every load.
 */
export function hueAt(/** @type {number} */ i) {
  return Math.round(HUE_MIN + ((i * 0.6180339887) % 1) * HUE_SPAN);
}

/** A hue from a name alone (FNV-1a): for zones, of which there are few and which need no neighbours. */
export function hueOf(/** @type {string} */ name) {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return HUE_MIN + ((h >>> 0) % HUE_SPAN);
}

/** Task ids are `job.instance.attempt` (master.ts createTasks); the numbers are read from the end. */
function parseTaskId(/** @type {string} */ id) {
  const m = /\.(\d+)\.(\d+)$/.exec(id);
  return m ? { instance: Number(m[1]), attempt: Number(m[2]) } : { instance: 0, attempt: 0 };
}

const collator = new Intl.Collator('en', { numeric: true });

// ---- series ------------------------------------------------------------------------------------------------

/** Per-second counts over the last HISTORY_SECONDS, keyed by the event's own time (a replay lands in the past). */
export class CountSeries {
  constructor(n = HISTORY_SECONDS) {
    this.n = n;
    this.secs = new Float64Array(n).fill(-1);
    this.counts = new Float64Array(n);
  }

  add(/** @type {number} */ sec, v = 1) {
    const i = sec % this.n;
    if (this.secs[i] !== sec) {
      if (this.secs[i] > sec) return; // older than the window
      this.secs[i] = sec;
      this.counts[i] = 0;
    }
    this.counts[i] += v;
  }

  get(/** @type {number} */ sec) {
    const i = sec % this.n;
    return this.secs[i] === sec ? this.counts[i] : 0;
  }

  has(/** @type {number} */ sec) {
    return this.secs[sec % this.n] === sec;
  }

  /** Values for the `n` seconds ending at `endSec` (inclusive), oldest first; `gap` where a second has none. */
  window(/** @type {number} */ endSec, n = this.n, /** @type {number | null} */ gap = 0) {
    /** @type {(number | null)[]} */
    const out = new Array(n);
    for (let k = 0; k < n; k++) {
      const sec = endSec - n + 1 + k;
      out[k] = this.has(sec) ? this.get(sec) : gap;
    }
    return out;
  }
}

/** Per-second latency samples (a bounded reservoir per second) with p50/p99 computed once per second bucket. */
export class LatencySeries {
  constructor(n = HISTORY_SECONDS, cap = LATENCY_SAMPLES_PER_SECOND) {
    this.n = n;
    this.cap = cap;
    this.secs = new Float64Array(n).fill(-1);
    /** @type {number[][]} */
    this.samples = Array.from({ length: n }, () => []);
    this.seen = new Float64Array(n);
    /** @type {({p50: number, p99: number, max: number} | null)[]} */
    this.cache = new Array(n).fill(null);
  }

  add(/** @type {number} */ sec, /** @type {number} */ ms) {
    const i = sec % this.n;
    if (this.secs[i] !== sec) {
      if (this.secs[i] > sec) return;
      this.secs[i] = sec;
      this.samples[i].length = 0;
      this.seen[i] = 0;
    }
    const s = this.samples[i];
    this.seen[i]++;
    if (s.length < this.cap) s.push(ms);
    else {
      // Reservoir sampling: every sample of the second is kept with the same probability.
      const j = Math.floor(Math.random() * this.seen[i]);
      if (j < this.cap) s[j] = ms;
    }
    this.cache[i] = null;
  }

  /** p50, p99 and max of one second, or null when nothing was placed in it. */
  stats(/** @type {number} */ sec) {
    const i = sec % this.n;
    if (this.secs[i] !== sec || this.samples[i].length === 0) return null;
    let c = this.cache[i];
    if (c === null) {
      const s = [...this.samples[i]].sort((a, b) => a - b);
      c = { p50: quantile(s, 0.5), p99: quantile(s, 0.99), max: s[s.length - 1] };
      this.cache[i] = c;
    }
    return c;
  }

  /** p50 and p99 over every sample of the `n` seconds ending at `endSec`. */
  summary(/** @type {number} */ endSec, /** @type {number} */ n) {
    /** @type {number[]} */
    const all = [];
    for (let sec = endSec - n + 1; sec <= endSec; sec++) {
      const i = sec % this.n;
      if (this.secs[i] === sec) for (const v of this.samples[i]) all.push(v);
    }
    if (all.length === 0) return null;
    all.sort((a, b) => a - b);
    return { p50: quantile(all, 0.5), p99: quantile(all, 0.99), count: all.length };
  }
}

function quantile(/** @type {number[]} */ sorted, /** @type {number} */ q) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

// ---- the model ---------------------------------------------------------------------------------------------

/**
 * The cluster as the stream describes it. `applySnapshot` replaces everything (a resync); `applyEvents` folds
 * events in, in seq order, skipping any it has already seen and reporting a gap. What changed since the last
 * `takeChanges()` is collected for the view, which redraws only that.
 *
 * An agent's usage is the sum of its tasks' per-instance resources (staging, starting and running tasks hold
 * them, as the master's holdings do), so it moves with every placement and every task that ends.
 */
export class ClusterModel {
  constructor() {
    /** @type {string | null} */
    this.epoch = null;
    this.seq = 0;
    /** @type {Map<string, Agent>} */
    this.agents = new Map();
    /** @type {Map<string, Job>} */
    this.jobs = new Map();
    /** @type {Map<string, number>} each job's hue, kept across snapshots so a colour never changes under a person's eyes */
    this.hues = new Map();
    /** @type {Map<string, Task>} non-terminal tasks only: an ended task leaves the page */
    this.tasks = new Map();
    /** @type {Set<string>} */
    this.pending = new Set();
    /** @type {Map<string, BalancerReport>} the latest balancer_stats of each balancer (several may front a cluster) */
    this.balancers = new Map();
    /** @type {Map<string, Map<string, CountSeries>>} requests/s per second, per service, per balancer */
    this.serviceRps = new Map();
    /** @type {ClusterEvent[]} newest last */
    this.feed = [];
    /** Events ever added to the feed (seqs start over when a master begins a new log, so they cannot say what is new). */
    this.feedTotal = 0;
    this.rate = new CountSeries();
    this.latency = new LatencySeries();
    /** Set when an event named something the page cannot draw without a snapshot (see REFRESH_DEBOUNCE_MS). */
    this.needsRefresh = false;
    this.changes = ClusterModel.noChanges();
    this.changes.all = true;
  }

  /** @returns {Changes} */
  static noChanges() {
    return { all: false, agents: new Set(), jobs: new Set(), tasks: new Set(), removed: new Map(), pending: false, services: false, feed: false };
  }

  /** What changed since the last call. */
  takeChanges() {
    const c = this.changes;
    this.changes = ClusterModel.noChanges();
    return c;
  }

  /** A resync: the state as of `msg.seq` replaces everything (series and the feed carry on: they are history). */
  applySnapshot(/** @type {any} */ msg) {
    this.epoch = String(msg.epoch);
    this.seq = num(msg.seq);
    this.agents.clear();
    this.jobs.clear();
    this.tasks.clear();
    this.pending.clear();
    this.needsRefresh = false;
    const snap = msg.snapshot ?? {};
    for (const v of Array.isArray(snap.agents) ? snap.agents : []) {
      const a = this.#agent(String(v.id));
      a.hostname = String(v.hostname ?? a.id);
      a.host = String(v.address ?? v.hostname ?? '');
      a.state = String(v.state ?? 'up');
      a.attributes = v.attributes && typeof v.attributes === 'object' ? { ...v.attributes } : {};
      a.zone = String(a.attributes.zone ?? '');
      const r = v.resources ?? {};
      a.cap = { cpus: num(r.cpus), mem: num(r.mem), disk: num(r.disk), gpus: num(r.gpus) };
      a.detailed = true;
    }
    for (const v of Array.isArray(snap.jobs) ? snap.jobs : []) {
      const j = this.#job(String(v.name));
      const spec = v.spec ?? {};
      j.type = String(spec.type ?? '');
      j.state = String(v.state ?? 'running');
      j.instances = num(spec.instances);
      const res = specResources(spec.resources);
      if (res) {
        j.res = res;
        j.resKnown = true;
      }
    }
    for (const v of Array.isArray(snap.tasks) ? snap.tasks : []) {
      const id = String(v.id);
      const job = this.#job(String(v.job));
      const instance = num(v.instance);
      const attempt = num(v.attempt);
      const state = String(v.state);
      this.#slot(job, instance, attempt, state);
      if (TERMINAL.has(state)) continue;
      /** @type {Task} */
      const t = { id, job: job.name, instance, attempt, state, ports: Array.isArray(v.ports) ? v.ports : [], killing: false };
      if (v.agentId !== undefined) t.agentId = String(v.agentId);
      if (v.host !== undefined) t.host = String(v.host);
      if (typeof v.healthy === 'boolean') t.healthy = v.healthy;
      const pendingAt = Array.isArray(v.history) ? v.history.find((/** @type {any} */ h) => h.state === 'pending')?.at : undefined;
      if (typeof pendingAt === 'number') t.pendingAt = pendingAt;
      this.tasks.set(id, t);
      if (state === 'pending') this.pending.add(id);
      else if (t.agentId !== undefined && ON_AGENT.has(state)) this.#agent(t.agentId).tasks.add(id);
    }
    for (const a of this.agents.values()) a.usage = this.#usageOf(a);
    this.changes = ClusterModel.noChanges();
    this.changes.all = true;
  }

  /**
   * Events in seq order. Returns 'gap' when one is missing (the caller should resync: the stream promises no
   * gaps, so a missing seq means the page's state can no longer be trusted), else 'ok'.
   */
  applyEvents(/** @type {ClusterEvent[]} */ events) {
    let gap = false;
    for (const e of events) {
      if (typeof e?.seq !== 'number' || e.seq <= this.seq) continue; // a replay after a reconnect: seen already
      if (e.seq !== this.seq + 1) gap = true;
      this.seq = e.seq;
      this.applyEvent(e);
    }
    const c = this.changes;
    if (!c.all && c.tasks.size + c.removed.size > MAX_PENDING_CHANGES) {
      // Nobody has drawn for a long while (a hidden tab gets no animation frames): redraw everything once instead.
      this.changes = ClusterModel.noChanges();
      this.changes.all = true;
    }
    return gap ? 'gap' : 'ok';
  }

  /** One event (no seq bookkeeping: applyEvents does that). */
  applyEvent(/** @type {ClusterEvent} */ e) {
    const at = num(e.at, Date.now());
    this.rate.add(Math.floor(at / 1000));
    this.feed.push(e);
    this.feedTotal++;
    if (this.feed.length > FEED_SIZE) this.feed.splice(0, this.feed.length - FEED_SIZE);
    this.changes.feed = true;
    const d = e.data && typeof e.data === 'object' ? e.data : {};
    if (e.taskId !== undefined && e.state !== undefined) {
      this.#taskEvent(e, d, at);
      return;
    }
    switch (e.type) {
      case 'job_submitted': {
        if (e.job === undefined) return;
        const j = this.#job(e.job);
        j.type = String(d.type ?? j.type);
        j.state = 'running';
        j.instances = num(d.instances, j.instances);
        // A re-created job starts its instances over: the old incarnation's slots are history.
        j.slots.clear();
        const res = specResources(d.resources);
        if (res) {
          j.res = res;
          j.resKnown = true;
        } else {
          // Today's event carries cpus only: draw those at once, and fetch the rest with a snapshot.
          j.res = { ...zero(), cpus: num(d.cpus) };
          j.resKnown = false;
          this.needsRefresh = true;
        }
        this.changes.jobs.add(j.name);
        return;
      }
      case 'job_scaled':
        if (e.job !== undefined) this.#jobChange(e.job, (j) => (j.instances = num(d.to, j.instances)));
        return;
      case 'job_killed':
        if (e.job !== undefined) this.#jobChange(e.job, (j) => (j.state = 'killed'));
        return;
      case 'job_finished':
        if (e.job !== undefined) this.#jobChange(e.job, (j) => (j.state = String(d.state ?? 'finished')));
        return;
      case 'task_health': {
        const t = e.taskId === undefined ? undefined : this.tasks.get(e.taskId);
        if (t && typeof d.healthy === 'boolean') {
          t.healthy = d.healthy;
          this.changes.tasks.add(t.id);
        }
        return;
      }
      case 'task_killing': {
        const t = e.taskId === undefined ? undefined : this.tasks.get(e.taskId);
        if (t) {
          t.killing = true;
          this.changes.tasks.add(t.id);
        }
        return;
      }
      case 'agent_registered':
      case 'agent_reregistered': {
        if (e.agentId === undefined) return;
        const a = this.#agent(e.agentId);
        if (typeof d.hostname === 'string') a.hostname = d.hostname;
        if (typeof d.host === 'string') a.host = d.host;
        // A draining agent comes back draining (the master keeps the mark); anything else is up.
        a.state = a.state === 'draining' ? 'draining' : 'up';
        const r = d.resources;
        if (r && typeof r === 'object') {
          a.cap = { cpus: num(r.cpus), mem: num(r.mem), disk: num(r.disk), gpus: num(r.gpus) };
          if (d.attributes && typeof d.attributes === 'object') {
            a.attributes = { ...d.attributes };
            a.zone = String(a.attributes.zone ?? '');
          }
          a.detailed = true;
        } else if (!a.detailed) {
          a.cap.cpus = num(d.cpus, a.cap.cpus);
          this.needsRefresh = true;
        }
        this.changes.agents.add(a.id);
        return;
      }
      case 'agent_lost':
        if (e.agentId !== undefined) this.#agentChange(e.agentId, (a) => (a.state = 'lost'));
        return;
      case 'agent_draining':
      case 'agent_undrained': {
        // data.state says where the agent stands now: a lost agent stays lost whether drained or undrained.
        const fallback = e.type === 'agent_draining' ? 'draining' : 'up';
        const state = typeof d.state === 'string' ? d.state : fallback;
        if (e.agentId !== undefined) this.#agentChange(e.agentId, (a) => (a.state = state));
        return;
      }
      case 'agent_removed':
        if (e.agentId !== undefined && this.agents.has(e.agentId)) {
          this.agents.delete(e.agentId);
          this.changes.agents.add(e.agentId);
        }
        return;
      case 'balancer_stats':
        this.#balancer(d, at);
        return;
      default:
        // 'error' and types this page does not know yet: the feed shows them.
        return;
    }
  }

  /** Counts of the current attempt of every instance, by state (JobView.tasks' rule). */
  jobCounts(/** @type {Job} */ j) {
    /** @type {Record<string, number>} */
    const out = {};
    for (const s of j.slots.values()) out[s.state] = (out[s.state] ?? 0) + 1;
    return out;
  }

  /** Cluster totals over agents that are up or draining (ClusterView's rule: lost agents hold nothing). */
  totals() {
    const cap = zero();
    const used = zero();
    let up = 0;
    for (const a of this.agents.values()) {
      if (a.state === 'up') up++;
      if (a.state !== 'up' && a.state !== 'draining') continue;
      for (const k of RESOURCES) {
        cap[k] += a.cap[k];
        used[k] += a.usage[k];
      }
    }
    let running = 0;
    for (const t of this.tasks.values()) if (t.state === 'running') running++;
    return { cap, used, up, agents: this.agents.size, running, pending: this.pending.size, tasks: this.tasks.size, jobs: this.jobs.size };
  }

  #taskEvent(/** @type {ClusterEvent} */ e, /** @type {Record<string, any>} */ d, /** @type {number} */ at) {
    const id = /** @type {string} */ (e.taskId);
    const state = /** @type {string} */ (e.state);
    let t = this.tasks.get(id);
    if (t === undefined) {
      const parsed = parseTaskId(id);
      const job = e.job ?? id.replace(/\.\d+\.\d+$/, '');
      t = {
        id,
        job,
        instance: num(d.instance, parsed.instance),
        attempt: num(d.attempt, parsed.attempt),
        state,
        ports: [],
        killing: false,
      };
    }
    const prevAgent = t.agentId;
    if (state === 'pending') t.pendingAt = at;
    if (e.type === 'task_placed') {
      if (typeof d.host === 'string') t.host = d.host;
      if (Array.isArray(d.ports)) t.ports = d.ports;
      // Scheduling latency: from the moment the task began waiting (its pending event or its creation) to its placement.
      if (t.pendingAt !== undefined) this.latency.add(Math.floor(at / 1000), Math.max(0, at - t.pendingAt));
    }
    if (e.agentId !== undefined) t.agentId = e.agentId;
    t.state = state;
    const job = this.#job(t.job);
    this.#slot(job, t.instance, t.attempt, state);
    this.changes.jobs.add(job.name);
    this.changes.tasks.add(id);
    if (state === 'pending') this.pending.add(id);
    else if (this.pending.delete(id)) this.changes.pending = true;
    if (state === 'pending') this.changes.pending = true;
    if (prevAgent !== undefined && prevAgent !== t.agentId) this.#leaveAgent(prevAgent, id);
    if (TERMINAL.has(state)) {
      this.tasks.delete(id);
      this.changes.removed.set(id, state);
      if (t.agentId !== undefined) this.#leaveAgent(t.agentId, id);
      return;
    }
    this.tasks.set(id, t);
    if (t.agentId !== undefined && ON_AGENT.has(state)) {
      const a = this.#agent(t.agentId);
      if (!a.tasks.has(id)) {
        a.tasks.add(id);
        a.usage = this.#usageOf(a);
        this.changes.agents.add(a.id);
      }
    }
  }

  #leaveAgent(/** @type {string} */ agentId, /** @type {string} */ taskId) {
    const a = this.agents.get(agentId);
    if (a && a.tasks.delete(taskId)) {
      a.usage = this.#usageOf(a);
      this.changes.agents.add(a.id);
    }
  }

  #usageOf(/** @type {Agent} */ a) {
    const u = zero();
    for (const id of a.tasks) {
      const t = this.tasks.get(id);
      const j = t && this.jobs.get(t.job);
      if (!j) continue;
      u.cpus += j.res.cpus;
      u.mem += j.res.mem;
      u.disk += j.res.disk;
      u.gpus += j.res.gpus;
    }
    return u;
  }

  /** The agent, created as a placeholder (no figures yet) when a task names one the page has not seen. */
  #agent(/** @type {string} */ id) {
    let a = this.agents.get(id);
    if (a === undefined) {
      a = { id, hostname: id, host: '', state: 'unknown', zone: '', attributes: {}, cap: zero(), detailed: false, tasks: new Set(), usage: zero() };
      this.agents.set(id, a);
      this.changes.agents.add(id);
    }
    return a;
  }

  #agentChange(/** @type {string} */ id, /** @type {(a: Agent) => void} */ fn) {
    const a = this.agents.get(id);
    if (!a) return;
    fn(a);
    this.changes.agents.add(id);
  }

  #job(/** @type {string} */ name) {
    let j = this.jobs.get(name);
    if (j === undefined) {
      let hue = this.hues.get(name);
      if (hue === undefined) this.hues.set(name, (hue = hueAt(this.hues.size)));
      j = { name, type: '', state: 'running', instances: 0, res: zero(), resKnown: false, slots: new Map(), hue };
      this.jobs.set(name, j);
      this.changes.jobs.add(name);
    }
    return j;
  }

  #jobChange(/** @type {string} */ name, /** @type {(j: Job) => void} */ fn) {
    fn(this.#job(name));
    this.changes.jobs.add(name);
  }

  /** An instance's slot follows its newest attempt; an older attempt's late news does not move it back. */
  #slot(/** @type {Job} */ j, /** @type {number} */ instance, /** @type {number} */ attempt, /** @type {string} */ state) {
    const s = j.slots.get(instance);
    if (s === undefined || attempt > s.attempt) j.slots.set(instance, { attempt, state });
    else if (attempt === s.attempt) s.state = state;
  }

  /**
   * A `balancer_stats` event (src/balancer/types.ts BalancerStats: `{balancer, intervalMs, services: [{name, rps,
   * active, errors, p50Ms, p99Ms, endpoints: [{id, address, state, weight, active, rps, errors}]}]}`), read
   * defensively: older field names (`service`, `requestsPerSec`, `taskId`, `ejected`/`draining`) are accepted and
   * a figure that is missing is drawn as missing. Each balancer's latest report is kept; services() merges them.
   */
  #balancer(/** @type {Record<string, any>} */ d, /** @type {number} */ at) {
    const id = String(d.balancer ?? '');
    const intervalMs = Math.max(1, num(d.intervalMs, 1000));
    /** @type {ServiceStats[]} */
    const services = [];
    for (const s of Array.isArray(d.services) ? d.services : []) {
      if (!s || typeof s !== 'object') continue;
      const endpoints = (Array.isArray(s.endpoints) ? s.endpoints : [])
        .filter((/** @type {any} */ p) => p && typeof p === 'object')
        .map((/** @type {any} */ p) => ({
          id: String(p.id ?? p.taskId ?? ''),
          address: String(p.address ?? ''),
          state: typeof p.state === 'string' ? p.state : p.ejected === true ? 'ejected' : p.draining === true ? 'draining' : 'up',
          weight: num(p.weight, Number.NaN),
          active: num(p.active, Number.NaN),
          rps: num(p.rps ?? p.requestsPerSec, Number.NaN),
          errors: errorCount(p.errors),
        }));
      const svc = {
        name: String(s.name ?? s.service ?? '?'),
        rps: num(s.rps ?? s.requestsPerSec, Number.NaN),
        p50Ms: num(s.p50Ms, Number.NaN),
        p99Ms: num(s.p99Ms, Number.NaN),
        active: num(s.active, Number.NaN),
        errors: errorCount(s.errors),
        endpoints,
        quiet: false,
      };
      services.push(svc);
      let perBalancer = this.serviceRps.get(svc.name);
      if (!perBalancer) this.serviceRps.set(svc.name, (perBalancer = new Map()));
      let series = perBalancer.get(id);
      if (!series) perBalancer.set(id, (series = new CountSeries()));
      // The figure is a rate over the whole interval: every second of it had that rate.
      if (Number.isFinite(svc.rps)) {
        const last = Math.floor(at / 1000);
        const first = Math.max(last - HISTORY_SECONDS + 1, Math.floor((at - intervalMs) / 1000) + 1);
        for (let sec = first; sec <= last; sec++) series.add(sec, svc.rps - series.get(sec));
      }
    }
    this.balancers.set(id, { at, intervalMs, services });
    this.changes.services = true;
  }

  /**
   * Every service across every balancer as of `now` (the master's clock): requests/s, connections and errors add
   * up, p50/p99 are the worst balancer's, endpoints are merged by id. A balancer reports only when something
   * changed, so one silent for a few intervals has had no requests: its rates count as 0 (the service is `quiet`
   * when all of its balancers are), while its connection counts and endpoint states stand.
   */
  services(/** @type {number} */ now) {
    /** @type {Map<string, ServiceStats>} */
    const out = new Map();
    for (const r of this.balancers.values()) {
      const quiet = now - r.at > Math.max(QUIET_MIN_MS, QUIET_INTERVALS * r.intervalMs);
      for (const s of r.services) {
        let m = out.get(s.name);
        if (!m) {
          m = { name: s.name, rps: Number.NaN, p50Ms: Number.NaN, p99Ms: Number.NaN, active: Number.NaN, errors: Number.NaN, endpoints: [], quiet: true };
          out.set(s.name, m);
        }
        m.quiet &&= quiet;
        m.rps = addFig(m.rps, quiet ? 0 : s.rps);
        m.errors = addFig(m.errors, quiet ? 0 : s.errors);
        m.active = addFig(m.active, s.active);
        if (!quiet) {
          m.p50Ms = maxFig(m.p50Ms, s.p50Ms);
          m.p99Ms = maxFig(m.p99Ms, s.p99Ms);
        }
        for (const p of s.endpoints) {
          const e = m.endpoints.find((x) => x.id === p.id);
          if (!e) {
            m.endpoints.push({ ...p, rps: quiet ? 0 : p.rps, errors: quiet ? 0 : p.errors });
            continue;
          }
          e.active = addFig(e.active, p.active);
          e.rps = addFig(e.rps, quiet ? 0 : p.rps);
          e.errors = addFig(e.errors, quiet ? 0 : p.errors);
          if (STATE_RANK[p.state] > (STATE_RANK[e.state] ?? 0)) e.state = p.state;
          if (!e.address) e.address = p.address;
        }
      }
    }
    for (const m of out.values()) m.endpoints.sort((a, b) => collator.compare(a.id, b.id));
    return [...out.values()].sort((a, b) => collator.compare(a.name, b.name));
  }

  /** A service's requests/s per second over the `n` seconds ending at `endSec`, summed over its balancers. */
  serviceSeries(/** @type {string} */ name, /** @type {number} */ endSec, /** @type {number} */ n) {
    const sum = new Array(n).fill(0);
    for (const series of this.serviceRps.get(name)?.values() ?? []) {
      const w = series.window(endSec, n, 0);
      for (let i = 0; i < n; i++) sum[i] += w[i] ?? 0;
    }
    return sum;
  }
}

/** A report's `errors`: a count, or counts by kind (`{status_5xx: 3, reset: 1}`); NaN when absent. */
function errorCount(/** @type {unknown} */ e) {
  if (typeof e === 'number') return Number.isFinite(e) ? e : Number.NaN;
  if (!e || typeof e !== 'object') return Number.NaN;
  let n = 0;
  for (const v of Object.values(e)) if (typeof v === 'number' && Number.isFinite(v)) n += v;
  return n;
}

/** Sums where NaN means "not reported": a missing figure does not erase the others. */
const addFig = (/** @type {number} */ a, /** @type {number} */ b) => (Number.isNaN(a) ? b : Number.isNaN(b) ? a : a + b);
const maxFig = (/** @type {number} */ a, /** @type {number} */ b) => (Number.isNaN(a) ? b : Number.isNaN(b) ? a : Math.max(a, b));
/** @type {Record<string, number>} an endpoint in several balancers shows its worst state */
const STATE_RANK = { up: 0, starting: 1, draining: 2, ejected: 3 };

// ---- the stream client -------------------------------------------------------------------------------------

/**
 * @typedef {{state: 'connecting'|'live'|'reconnecting', detail: string, retryAt?: number, connects: number}} Status
 */

/**
 * Keeps one subscription to /v1/events feeding the model. The first connection asks for a snapshot; later ones
 * resume with `since=<last seq>&epoch=<epoch>`, which the master answers with the missed events, or with a resync
 * snapshot when it restarted (a new epoch) or no longer has them. On a close it reconnects with backoff.
 *
 * A refresh (the model needs figures only a snapshot has, or a gap was seen) opens a second subscription that asks
 * for a snapshot and takes over once the snapshot arrives, so the page never shows a disconnect for it.
 */
export class StreamClient {
  /**
   * @param {ClusterModel} model
   * @param {{url: (query: string) => string, onData: () => void, onStatus: (s: Status) => void,
   *   WebSocket?: typeof WebSocket, random?: () => number}} opts
   */
  constructor(model, opts) {
    this.model = model;
    this.opts = opts;
    this.WS = opts.WebSocket ?? globalThis.WebSocket;
    this.random = opts.random ?? Math.random;
    /** @type {WebSocket | null} */
    this.main = null;
    /** @type {WebSocket | null} */
    this.refreshing = null;
    this.backoff = RECONNECT_MIN_MS;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.retryTimer = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.refreshTimer = null;
    this.lastRefreshAt = -Infinity;
    this.stopped = false;
    /** @type {Status} */
    this.status = { state: 'connecting', detail: 'connecting to the master', connects: 0 };
    /** The reason in the master's last close message, shown while reconnecting. */
    /** @type {string | undefined} */
    this.lastClose = undefined;
  }

  start() {
    this.#connect();
  }

  stop() {
    this.stopped = true;
    for (const t of [this.retryTimer, this.refreshTimer]) if (t) clearTimeout(t);
    for (const ws of [this.main, this.refreshing]) if (ws) this.#drop(ws);
    this.main = this.refreshing = null;
  }

  /** Asks for a fresh snapshot soon (debounced and rate-limited; see REFRESH_DEBOUNCE_MS). */
  requestRefresh() {
    if (this.stopped || this.refreshTimer || this.refreshing) return;
    const wait = Math.max(REFRESH_DEBOUNCE_MS, this.lastRefreshAt + REFRESH_MIN_INTERVAL_MS - Date.now());
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      if (this.stopped || this.refreshing || this.status.state !== 'live') return;
      this.lastRefreshAt = Date.now();
      this.refreshing = this.#open(`epoch=${SNAPSHOT_EPOCH}`, true);
    }, wait);
  }

  #setStatus(/** @type {Partial<Status>} */ s) {
    this.status = { ...this.status, ...s };
    this.opts.onStatus(this.status);
  }

  #connect() {
    this.retryTimer = null;
    if (this.stopped) return;
    const m = this.model;
    const query = m.epoch === null ? `epoch=${SNAPSHOT_EPOCH}` : `since=${m.seq}&epoch=${encodeURIComponent(m.epoch)}`;
    if (this.main) this.#drop(this.main);
    this.main = this.#open(query, false);
  }

  /** Opens a subscription; `refresh` ones take over from the main one at their first message. */
  #open(/** @type {string} */ query, /** @type {boolean} */ refresh) {
    const ws = new this.WS(this.opts.url(query), SUBPROTOCOL);
    let first = true;
    /** Set when the page itself gives up on the socket (a frame it cannot read), to say why while reconnecting. */
    let closeReason = '';
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(typeof ev.data === 'string' ? ev.data : '');
      } catch {
        closeReason = 'the master sent a frame that is not JSON';
        ws.close(4000, 'bad frame');
        return;
      }
      if (first) {
        first = false;
        if (refresh) {
          if (this.refreshing !== ws) return this.#drop(ws);
          this.refreshing = null;
          if (this.main) this.#drop(this.main);
          // It is the main subscription now: a reconnect that was waiting is no longer needed.
          if (this.retryTimer) clearTimeout(this.retryTimer);
          this.retryTimer = null;
          this.main = ws;
        }
        this.backoff = RECONNECT_MIN_MS;
        this.#setStatus({ state: 'live', detail: '', connects: this.status.connects + (refresh ? 0 : 1) });
      }
      if (this.main !== ws) return;
      this.#onMessage(msg);
      if (this.model.needsRefresh) this.requestRefresh();
      this.opts.onData();
    };
    ws.onclose = (ev) => {
      if (refresh && this.refreshing === ws) this.refreshing = null;
      if (this.main !== ws || this.stopped) return;
      this.main = null;
      const why = closeReason || (ev.code === 1006 ? 'connection lost' : `closed (${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`);
      this.#scheduleReconnect(why);
    };
    ws.onerror = () => undefined; // a close event follows
    return ws;
  }

  #onMessage(/** @type {any} */ msg) {
    const m = this.model;
    if (Array.isArray(msg)) {
      if (m.applyEvents(msg) === 'gap') this.#forceRefresh();
      return;
    }
    switch (msg?.type) {
      case 'resync':
        m.applySnapshot(msg);
        return;
      case 'hello':
        // Resumed where we left off. A hello past our seq or of another epoch means events we will never see.
        if (msg.epoch !== m.epoch || num(msg.seq) > m.seq) this.#forceRefresh();
        return;
      case 'close':
        this.lastClose = `the master closed the stream: ${String(msg.reason ?? msg.code)}`;
        return;
      default:
        return;
    }
  }

  #forceRefresh() {
    this.lastRefreshAt = -Infinity;
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    this.requestRefresh();
  }

  #scheduleReconnect(/** @type {string} */ why) {
    const detail = this.lastClose ?? why;
    this.lastClose = undefined;
    // Equal jitter: a page per person, but a master restart reconnects them all at once.
    const delay = this.backoff / 2 + (this.random() * this.backoff) / 2;
    this.backoff = Math.min(this.backoff * 2, RECONNECT_MAX_MS);
    this.#setStatus({ state: 'reconnecting', detail, retryAt: Date.now() + delay });
    this.retryTimer = setTimeout(() => this.#connect(), delay);
  }

  #drop(/** @type {WebSocket} */ ws) {
    ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(1000, 'done');
    } catch {
      // already closing
    }
  }
}

// ---- the view ----------------------------------------------------------------------------------------------

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [cls]
 * @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** @param {string} id */
function byId(id) {
  const e = document.getElementById(id);
  if (!e) throw new Error(`the page has no #${id}`);
  return e;
}

const jobColor = (/** @type {number} */ hue) => `hsl(${hue} 72% 62%)`;

/** What a chip shows: the task's state, or its health and kill marks over it. */
function chipState(/** @type {Task} */ t) {
  if (t.killing) return 'killing';
  if (t.state === 'running' && t.healthy === false) return 'unhealthy';
  return t.state;
}

/** Chips sort by job, then instance, so a job's tasks sit together on a card. */
const chipKey = (/** @type {Task} */ t) => `${t.job}\u0000${String(t.instance).padStart(6, '0')}`;

/**
 * @typedef {{root: HTMLElement, name: HTMLElement, state: HTMLElement, zone: HTMLElement, host: HTMLElement,
 *   count: HTMLElement, chips: HTMLElement, bars: Record<string, {row: HTMLElement, fill: HTMLElement, value: HTMLElement}>, zoneKey: string}} Card
 * @typedef {{root: HTMLElement, grid: HTMLElement, title: HTMLElement, meta: HTMLElement}} ZoneBox
 */

export class View {
  constructor(/** @type {ClusterModel} */ model) {
    this.model = model;
    this.zonesEl = byId('zones');
    this.pendingEl = byId('pending');
    this.pendingCount = byId('pending-count');
    this.jobsEl = byId('jobs');
    this.servicesEl = byId('services');
    this.servicesMeta = byId('services-meta');
    this.feedEl = byId('feed');
    this.connEl = byId('conn');
    this.connText = byId('conn-text');
    this.connDetail = byId('conn-detail');
    this.seqEl = byId('seq');
    /** @type {Map<string, Card>} */
    this.cards = new Map();
    /** @type {Map<string, ZoneBox>} */
    this.zones = new Map();
    /** @type {Map<string, HTMLElement>} */
    this.chips = new Map();
    /** @type {Map<string, HTMLElement>} */
    this.jobRows = new Map();
    this.feedSeen = 0;
    /** @type {[HTMLCanvasElement, string][]} each service's sparkline and its name */
    this.sparks = [];
    this.servicesSig = '';
    /** @type {Status} */
    this.status = { state: 'connecting', detail: '', connects: 0 };
    /** Seconds the browser's clock runs ahead of the master's (the smallest arrival − event time seen). */
    this.skewMs = Number.POSITIVE_INFINITY;
    /** Cluster cpu allocation (%), sampled once a second. */
    this.cpuSeries = new CountSeries();
    this.charts = {
      rate: /** @type {HTMLCanvasElement} */ (byId('rate-chart')),
      latency: /** @type {HTMLCanvasElement} */ (byId('latency-chart')),
      cpu: /** @type {HTMLCanvasElement} */ (byId('cpu-chart')),
    };
  }

  /** Everything that changed; called at most once per animation frame. */
  render(/** @type {Changes} */ ch) {
    if (ch.all) this.#rebuild();
    else {
      for (const id of ch.agents) this.#card(id);
      for (const [id, state] of ch.removed) this.#removeChip(id, state);
      for (const id of ch.tasks) {
        const t = this.model.tasks.get(id);
        if (t) this.#chip(t);
      }
      for (const name of ch.jobs) this.#jobRow(name);
    }
    if (ch.all || ch.pending) this.#pendingTray();
    if (ch.all || ch.services) this.#services();
    if (ch.feed) this.#feed();
    if (ch.all || ch.agents.size > 0 || ch.tasks.size > 0 || ch.removed.size > 0) this.#totals();
    this.seqEl.textContent = this.model.epoch === null ? '' : `seq ${this.model.seq}`;
    document.body.dataset.seq = String(this.model.seq);
    document.body.dataset.epoch = this.model.epoch ?? '';
  }

  /** Notes the clock offset from a batch's newest event (the master and the page may not agree on the time). */
  observeClock(/** @type {number} */ eventAt) {
    const skew = Date.now() - eventAt;
    if (skew < this.skewMs) this.skewMs = skew;
  }

  setStatus(/** @type {Status} */ s) {
    this.status = s;
    // A fresh connection may meet a master with another clock.
    if (s.state !== 'live') this.skewMs = Number.POSITIVE_INFINITY;
    this.connEl.dataset.status = s.state;
    this.connEl.dataset.connects = String(s.connects);
    this.#statusText();
  }

  /** Once a second: the charts and the reconnect countdown move with time, not with events. */
  tick() {
    const t = this.model.totals();
    const sec = Math.floor(this.#serverNow() / 1000);
    const pct = t.cap.cpus > 0 ? (100 * t.used.cpus) / t.cap.cpus : 0;
    // A busy page may tick late and skip a second: a short hole is the same allocation, a long one (a hidden tab) a gap.
    let prev = sec - 1;
    while (prev > sec - CPU_FILL_SECONDS && !this.cpuSeries.has(prev)) prev--;
    if (this.cpuSeries.has(prev)) for (let s = prev + 1; s < sec; s++) this.cpuSeries.add(s, pct);
    this.cpuSeries.add(sec, pct - this.cpuSeries.get(sec));
    this.#charts();
    if (this.model.balancers.size > 0) {
      // A service going quiet changes its figures; otherwise only the sparklines move with time.
      if (this.#servicesSignature() !== this.servicesSig) this.#services();
      else for (const [canvas, name] of this.sparks) drawSeries(canvas, [{ values: this.model.serviceSeries(name, sec, 60), color: SPARK_COLOR, fill: true }], {});
    }
    if (this.status.state === 'reconnecting') this.#statusText();
  }

  #serverNow() {
    return Date.now() - (Number.isFinite(this.skewMs) ? this.skewMs : 0);
  }

  #statusText() {
    const s = this.status;
    let text = 'connecting…';
    if (s.state === 'live') text = 'live';
    else if (s.state === 'reconnecting') {
      const left = Math.max(0, ((s.retryAt ?? 0) - Date.now()) / 1000);
      text = `reconnecting${left >= 0.5 ? ` in ${Math.round(left)} s` : '…'}`;
    }
    this.connText.textContent = text;
    this.connEl.title = s.detail || text;
    this.connDetail.textContent = s.state === 'live' ? '' : s.detail;
  }

  // -- agents and chips --

  #rebuild() {
    this.zonesEl.replaceChildren();
    this.cards.clear();
    this.zones.clear();
    this.chips.clear();
    const agents = [...this.model.agents.values()].sort((a, b) => collator.compare(a.id, b.id));
    for (const a of agents) this.#card(a.id);
    const tasks = [...this.model.tasks.values()].sort((a, b) => collator.compare(chipKey(a), chipKey(b)));
    for (const t of tasks) this.#chip(t);
    this.jobsEl.replaceChildren();
    this.jobRows.clear();
    for (const name of this.model.jobs.keys()) this.#jobRow(name);
    this.#emptyHint();
  }

  #emptyHint() {
    this.zonesEl.dataset.empty = this.model.agents.size === 0 ? 'true' : 'false';
  }

  /** The zone's section, created in zone order (agents without a zone last). */
  #zone(/** @type {string} */ key) {
    let z = this.zones.get(key);
    if (z) return z;
    const root = el('section', 'zone');
    root.dataset.zone = key;
    const head = el('header', 'zone-head');
    const title = el('h3', 'zone-title', key === '' ? 'no zone' : `zone ${key}`);
    const meta = el('span', 'zone-meta');
    head.append(title, meta);
    const grid = el('div', 'grid');
    root.append(head, grid);
    z = { root, grid, title, meta };
    this.zones.set(key, z);
    const keys = [...this.zones.keys()].sort((a, b) => (a === '' ? 1 : b === '' ? -1 : collator.compare(a, b)));
    const next = keys[keys.indexOf(key) + 1];
    this.zonesEl.insertBefore(root, next === undefined ? null : this.zones.get(next)?.root ?? null);
    return z;
  }

  #zoneMeta(/** @type {string} */ key) {
    const z = this.zones.get(key);
    if (!z) return;
    const n = z.grid.childElementCount;
    if (n === 0) {
      z.root.remove();
      this.zones.delete(key);
      return;
    }
    z.meta.textContent = `${n} agent${n === 1 ? '' : 's'}`;
    // Zones share rows in proportion to their agents (style.css), so three small zones sit side by side.
    z.root.style.setProperty('--n', String(Math.min(n, 8)));
  }

  /** Creates, moves (zone change), updates or removes an agent's card. */
  #card(/** @type {string} */ id) {
    const a = this.model.agents.get(id);
    let c = this.cards.get(id);
    if (!a) {
      if (c) {
        c.root.remove();
        this.cards.delete(id);
        for (const chip of c.chips.querySelectorAll('[data-task-id]')) this.chips.delete(/** @type {HTMLElement} */ (chip).dataset.taskId ?? '');
        this.#zoneMeta(c.zoneKey);
      }
      this.#emptyHint();
      return;
    }
    if (!c) {
      c = this.#newCard(a);
      this.cards.set(id, c);
    }
    if (c.zoneKey !== a.zone || !c.root.isConnected) {
      const old = c.zoneKey;
      c.zoneKey = a.zone;
      const grid = this.#zone(a.zone).grid;
      let before = null;
      for (const other of grid.children) {
        if (collator.compare(/** @type {HTMLElement} */ (other).dataset.agentId ?? '', id) > 0) {
          before = other;
          break;
        }
      }
      grid.insertBefore(c.root, before);
      if (old !== a.zone) this.#zoneMeta(old);
      this.#zoneMeta(a.zone);
    }
    c.root.dataset.state = a.state;
    c.root.dataset.detailed = String(a.detailed);
    c.name.textContent = a.hostname === a.id ? a.id : `${a.hostname}`;
    c.name.title = a.hostname === a.id ? a.id : `${a.hostname} (${a.id})`;
    c.state.textContent = a.state === 'unknown' ? 'waiting' : a.state;
    c.zone.textContent = a.zone === '' ? '' : a.zone;
    c.zone.hidden = a.zone === '';
    c.zone.style.setProperty('--z', `${hueOf(`zone:${a.zone}`)}`);
    c.host.textContent = a.host;
    c.count.textContent = `${a.tasks.size} task${a.tasks.size === 1 ? '' : 's'}`;
    for (const k of RESOURCES) {
      const b = c.bars[k];
      const cap = a.cap[k];
      const used = a.usage[k];
      const known = a.detailed || k === 'cpus';
      const pct = cap > 0 ? Math.min(100, (100 * used) / cap) : 0;
      b.fill.style.transform = `scaleX(${pct / 100})`;
      b.row.dataset.level = !known || cap <= 0 ? 'none' : pct >= 90 ? 'hot' : pct >= 70 ? 'warm' : 'ok';
      b.value.textContent = !known ? '…' : cap <= 0 && used <= 0 ? '–' : `${fmtQuantity(k, used)} / ${fmtQuantity(k, cap)}`;
      b.row.title = known ? `${k}: ${fmtQuantity(k, used)} of ${fmtQuantity(k, cap)} allocated (${Math.round(pct)}%)` : `${k}: waiting for the agent's figures`;
    }
  }

  #newCard(/** @type {Agent} */ a) {
    const root = el('article', 'agent');
    root.dataset.agentId = a.id;
    const head = el('header', 'agent-head');
    const name = el('span', 'agent-name');
    const zone = el('span', 'zone-chip');
    const state = el('span', 'agent-state');
    head.append(name, zone, state);
    const meta = el('div', 'agent-meta');
    const host = el('span', 'agent-host');
    const count = el('span', 'agent-count');
    meta.append(host, count);
    const barsEl = el('div', 'bars');
    /** @type {Card['bars']} */
    const bars = {};
    for (const k of RESOURCES) {
      const row = el('div', 'bar');
      row.dataset.res = k;
      const track = el('span', 'bar-track');
      const fill = el('span', 'bar-fill');
      track.append(fill);
      const value = el('span', 'bar-value');
      row.append(el('span', 'bar-label', k === 'cpus' ? 'cpu' : k === 'gpus' ? 'gpu' : k), track, value);
      barsEl.append(row);
      bars[k] = { row, fill, value };
    }
    const chips = el('div', 'chips');
    root.append(head, meta, barsEl, chips);
    return { root, name, state, zone, host, count, chips, bars, zoneKey: '\u0000' };
  }

  /** Puts a task's chip on its agent's card (creating or moving it) and styles it by state. */
  #chip(/** @type {Task} */ t) {
    const onAgent = t.agentId !== undefined && ON_AGENT.has(t.state);
    let chip = this.chips.get(t.id);
    if (!onAgent) {
      // Pending tasks are drawn by the tray, not as chips.
      if (chip) this.#removeChip(t.id, t.state);
      return;
    }
    const card = this.cards.get(/** @type {string} */ (t.agentId));
    if (!card) return;
    if (!chip) {
      chip = el('span', 'task enter');
      chip.dataset.taskId = t.id;
      chip.dataset.job = t.job;
      chip.style.setProperty('--c', jobColor(this.model.jobs.get(t.job)?.hue ?? HUE_MIN));
      chip.addEventListener('animationend', onEntered);
      this.chips.set(t.id, chip);
    }
    chip.dataset.agentId = /** @type {string} */ (t.agentId);
    chip.dataset.state = chipState(t);
    chip.title = `${t.id} · ${chipState(t)}${t.host && t.ports.length > 0 ? ` · ${t.host}:${t.ports[0]}` : ''}`;
    if (chip.parentElement !== card.chips) {
      const key = chipKey(t);
      /** @type {Element | null} */
      let before = null;
      // New instances usually sort last (and a rebuild adds them in order): check the end before scanning.
      const lastTask = this.model.tasks.get(/** @type {HTMLElement | null} */ (card.chips.lastElementChild)?.dataset.taskId ?? '');
      const scan = lastTask !== undefined && collator.compare(chipKey(lastTask), key) > 0;
      if (scan) for (const other of card.chips.children) {
        const o = this.model.tasks.get(/** @type {HTMLElement} */ (other).dataset.taskId ?? '');
        if (o && collator.compare(chipKey(o), key) > 0) {
          before = other;
          break;
        }
      }
      card.chips.insertBefore(chip, before);
    }
  }

  #removeChip(/** @type {string} */ id, /** @type {string} */ state) {
    const chip = this.chips.get(id);
    if (!chip) return;
    this.chips.delete(id);
    chip.dataset.state = state;
    chip.classList.remove('enter');
    chip.classList.add('leaving');
    setTimeout(() => chip.remove(), LEAVE_MS);
  }

  #pendingTray() {
    const total = this.model.pending.size;
    this.pendingCount.textContent = String(total);
    this.pendingEl.parentElement?.toggleAttribute('data-empty', total === 0);
    // The oldest waiting tasks (a Set keeps creation order), grouped by job: never a sort of a 10,000-task queue.
    /** @type {Task[]} */
    const shown = [];
    for (const id of this.model.pending) {
      const t = this.model.tasks.get(id);
      if (t) shown.push(t);
      if (shown.length === PENDING_TRAY_MAX) break;
    }
    shown.sort((a, b) => collator.compare(chipKey(a), chipKey(b)));
    const frag = document.createDocumentFragment();
    for (const t of shown) {
      const chip = el('span', 'task');
      chip.dataset.state = 'pending';
      chip.dataset.taskId = t.id;
      chip.dataset.job = t.job;
      chip.title = `${t.id} · pending`;
      chip.style.setProperty('--c', jobColor(this.model.jobs.get(t.job)?.hue ?? HUE_MIN));
      frag.append(chip);
    }
    if (total > shown.length) frag.append(el('span', 'more', `+${total - shown.length}`));
    this.pendingEl.replaceChildren(frag);
  }

  // -- jobs --

  #jobRow(/** @type {string} */ name) {
    const j = this.model.jobs.get(name);
    let row = this.jobRows.get(name);
    if (!j) {
      row?.remove();
      this.jobRows.delete(name);
      return;
    }
    if (!row) {
      row = el('div', 'job');
      row.dataset.job = name;
      row.style.setProperty('--c', jobColor(j.hue));
      const head = el('div', 'job-head');
      head.append(el('span', 'swatch'), el('span', 'job-name', name), el('span', 'job-type'), el('span', 'job-count'));
      const bar = el('div', 'job-bar');
      row.append(head, bar, el('div', 'job-states'));
      this.jobRows.set(name, row);
      this.#placeJobRow(row, j);
    }
    const counts = this.model.jobCounts(j);
    const total = Object.values(counts).reduce((s, n) => s + n, 0);
    const running = counts.running ?? 0;
    if (row.dataset.state !== j.state) {
      row.dataset.state = j.state;
      this.#placeJobRow(row, j);
    }
    row.dataset.running = String(running);
    const [, , type, count] = /** @type {HTMLElement[]} */ ([...(row.firstElementChild?.children ?? [])]);
    type.textContent = j.state === 'running' ? j.type : `${j.type} · ${j.state}`;
    count.textContent = `${running}/${j.instances}`;
    const bar = /** @type {HTMLElement} */ (row.children[1]);
    const segs = [];
    const words = [];
    for (const s of STATE_ORDER) {
      const n = counts[s] ?? 0;
      if (n === 0) continue;
      const seg = el('span', 'seg');
      seg.dataset.state = s;
      seg.style.flexGrow = String(n);
      seg.title = `${n} ${s}`;
      segs.push(seg);
      words.push(`${n} ${s}`);
    }
    bar.replaceChildren(...segs);
    bar.dataset.empty = String(total === 0);
    /** @type {HTMLElement} */ (row.children[2]).textContent = words.length > 0 ? words.join(' · ') : 'no tasks';
  }

  /** Active jobs first, by name; ended ones after them, dimmed. */
  #placeJobRow(/** @type {HTMLElement} */ row, /** @type {Job} */ j) {
    const rank = (/** @type {string} */ state) => (state === 'running' ? 0 : 1);
    let before = null;
    for (const other of this.jobsEl.children) {
      if (other === row) continue;
      const o = this.model.jobs.get(/** @type {HTMLElement} */ (other).dataset.job ?? '');
      if (!o) continue;
      const c = rank(o.state) - rank(j.state) || collator.compare(o.name, j.name);
      if (c > 0) {
        before = other;
        break;
      }
    }
    this.jobsEl.insertBefore(row, before);
  }

  // -- services (balancer) --

  #servicesSignature() {
    return this.model
      .services(this.#serverNow())
      .map((s) => `${s.name}:${s.quiet}`)
      .join(',');
  }

  #services() {
    const now = this.#serverNow();
    const services = this.model.services(now);
    this.servicesSig = services.map((s) => `${s.name}:${s.quiet}`).join(',');
    this.sparks = [];
    if (services.length === 0) {
      this.servicesEl.replaceChildren(el('p', 'hint', 'No balancer figures yet: they appear when a load balancer reports (balancer_stats events).'));
      this.servicesMeta.textContent = 'load balancer';
      return;
    }
    const n = this.model.balancers.size;
    this.servicesMeta.textContent = n > 1 ? `${n} load balancers` : 'load balancer';
    const frag = document.createDocumentFragment();
    const endSec = Math.floor(now / 1000);
    for (const s of services) {
      const box = el('div', 'service');
      box.dataset.service = s.name;
      box.dataset.quiet = String(s.quiet);
      const head = el('div', 'service-head');
      head.append(el('span', 'service-name', s.name));
      const figs = el('span', 'service-figs');
      figs.append(
        figure(fmtRate(s.rps), 'req/s'),
        figure(fmtMs(s.p99Ms), 'p99'),
        figure(Number.isFinite(s.active) ? String(s.active) : '–', 'conn'),
      );
      if (s.errors > 0) figs.append(figure(String(s.errors), 'err', 'bad'));
      head.append(figs);
      const spark = el('canvas', 'spark');
      this.sparks.push([spark, s.name]);
      box.append(head, spark);
      const maxActive = Math.max(1, ...s.endpoints.map((p) => (Number.isFinite(p.active) ? p.active : 0)));
      const table = el('div', 'endpoints');
      if (s.endpoints.length > 0) {
        const h = el('div', 'endpoint ep-head');
        h.append(el('span', 'ep-addr', 'endpoint'), el('span', '', 'connections'), el('span', 'ep-num', ''), el('span', 'ep-num', 'req/s'), el('span', 'ep-num', 'err'), el('span', 'ep-flags'));
        table.append(h);
      }
      for (const p of s.endpoints) {
        const row = el('div', 'endpoint');
        row.dataset.taskId = p.id;
        row.dataset.state = p.state;
        const name = el('span', 'ep-addr', p.address || p.id || '?');
        name.title = `${p.id}${p.address ? ` at ${p.address}` : ''}${Number.isFinite(p.weight) ? ` · weight ${p.weight}` : ''} · ${p.state}`;
        const track = el('span', 'ep-track');
        const fill = el('span', 'ep-fill');
        fill.style.transform = `scaleX(${Number.isFinite(p.active) ? p.active / maxActive : 0})`;
        track.append(fill);
        row.append(
          name,
          track,
          el('span', 'ep-num', Number.isFinite(p.active) ? String(p.active) : '–'),
          el('span', 'ep-num', fmtRate(p.rps)),
          el('span', 'ep-num err', p.errors > 0 ? String(p.errors) : ''),
          el('span', 'ep-flags', p.state === 'up' ? '' : p.state),
        );
        table.append(row);
      }
      box.append(table);
      frag.append(box);
    }
    this.servicesEl.replaceChildren(frag);
    for (const [canvas, name] of this.sparks) drawSeries(canvas, [{ values: this.model.serviceSeries(name, endSec, 60), color: SPARK_COLOR, fill: true }], {});
  }

  // -- feed, totals, charts --

  #feed() {
    const feed = this.model.feed;
    const fresh = feed.slice(Math.max(0, feed.length - (this.model.feedTotal - this.feedSeen)));
    this.feedSeen = this.model.feedTotal;
    if (fresh.length === 0) return;
    this.observeClock(fresh[fresh.length - 1].at);
    const frag = document.createDocumentFragment();
    for (let i = fresh.length - 1; i >= 0; i--) frag.append(feedItem(fresh[i]));
    this.feedEl.prepend(frag);
    while (this.feedEl.childElementCount > FEED_SIZE) this.feedEl.lastElementChild?.remove();
  }

  #totals() {
    const t = this.model.totals();
    setText('t-agents', `${t.up}`, `/ ${t.agents}`);
    setText('t-running', String(t.running), t.tasks > t.running ? `of ${t.tasks}` : '');
    setText('t-pending', String(t.pending), '');
    setText('t-cpus', fmtCores(t.used.cpus), `/ ${fmtCores(t.cap.cpus)}`);
    setText('t-mem', fmtMebibytes(t.used.mem), `/ ${fmtMebibytes(t.cap.mem)}`);
    setText('t-jobs', String(t.jobs), '');
    const agentsTitle = byId('agents-count');
    agentsTitle.textContent = `${t.agents} agent${t.agents === 1 ? '' : 's'} · ${t.tasks - t.pending} task${t.tasks - t.pending === 1 ? '' : 's'} placed`;
  }

  #charts() {
    const end = Math.floor(this.#serverNow() / 1000);
    // The current second is still filling: charts end at the last complete one.
    const last = end - 1;
    const rate = this.model.rate.window(last);
    const p50 = [];
    const p99 = [];
    for (let sec = last - HISTORY_SECONDS + 1; sec <= last; sec++) {
      const s = this.model.latency.stats(sec);
      p50.push(s ? s.p50 : null);
      p99.push(s ? s.p99 : null);
    }
    const recent = rate.slice(-10);
    setText('rate-value', fmtRate(recent.reduce((/** @type {number} */ sum, n) => sum + (n ?? 0), 0) / recent.length), 'events/s · 10 s avg');
    const lat = this.model.latency.summary(last, 30);
    setText('latency-value', lat ? fmtMs(lat.p50) : '–', lat ? `p50 · p99 ${fmtMs(lat.p99)} · ${lat.count} placed in 30 s` : 'no placements in 30 s');
    // Sampled by tick itself, so the current second is already there; a second the page slept through is a gap.
    const cpu = this.cpuSeries.window(end, HISTORY_SECONDS, null);
    setText('cpu-value', `${Math.round(cpu[cpu.length - 1] ?? 0)}%`, 'of cluster cpu allocated');
    drawSeries(this.charts.rate, [{ values: rate, color: '#7dd3fc', fill: true }], {});
    drawSeries(
      this.charts.latency,
      [
        { values: p99, color: '#f0abfc', fill: false },
        { values: p50, color: '#a78bfa', fill: true },
      ],
      {},
    );
    drawSeries(this.charts.cpu, [{ values: cpu, color: '#86efac', fill: true }], { max: 100 });
  }
}

function onEntered(/** @type {Event} */ ev) {
  /** @type {HTMLElement} */ (ev.currentTarget).classList.remove('enter');
}

function figure(/** @type {string} */ value, /** @type {string} */ label, cls = '') {
  const f = el('span', cls ? `fig ${cls}` : 'fig');
  f.append(el('b', '', value), el('small', '', label));
  return f;
}

function setText(/** @type {string} */ id, /** @type {string} */ main, /** @type {string} */ sub) {
  const box = byId(id);
  const b = box.querySelector('b');
  const small = box.querySelector('small');
  if (b) b.textContent = main;
  if (small) small.textContent = sub;
}

const FEED_KIND = (/** @type {string} */ type) => (type.startsWith('task') ? 'task' : type.startsWith('agent') ? 'agent' : type.startsWith('job') ? 'job' : type === 'error' ? 'error' : 'other');

function feedItem(/** @type {ClusterEvent} */ e) {
  const li = el('li', 'ev');
  li.dataset.kind = FEED_KIND(e.type);
  const time = new Date(e.at).toLocaleTimeString([], { hour12: false });
  const subject = e.taskId ?? e.job ?? e.agentId ?? '';
  let tail = '';
  if (e.state !== undefined) tail = `→ ${e.state}`;
  if (e.type === 'task_placed' && e.agentId) tail = `→ ${e.agentId}`;
  if (e.type === 'task_health') tail = e.data?.healthy ? 'healthy' : 'unhealthy';
  if (e.type === 'error') tail = String(e.data?.message ?? e.data?.code ?? '');
  if (e.type === 'agent_lost') tail = String(e.data?.reason ?? '');
  li.append(el('time', '', time), el('span', 'ev-type', e.type.replace('_', ' ')), el('span', 'ev-subject', subject), el('span', 'ev-tail', tail));
  li.title = `#${e.seq} ${e.type}${e.data ? ` ${JSON.stringify(e.data)}` : ''}`;
  return li;
}

/**
 * A sparkline on a canvas sized to its box (device pixels, so it stays sharp). `null` values are gaps. The scale
 * is 0..max (given, or the data's max with headroom), so a flat line at the bottom means zero, never "small".
 * @param {HTMLCanvasElement} canvas
 * @param {{values: (number|null)[], color: string, fill: boolean}[]} lines
 * @param {{max?: number}} opts
 */
function drawSeries(canvas, lines, opts) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
  const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  ctx.clearRect(0, 0, w, h);
  let max = opts.max ?? 0;
  if (opts.max === undefined) for (const l of lines) for (const v of l.values) if (v !== null && v > max) max = v;
  if (max <= 0) max = 1;
  else if (opts.max === undefined) max *= 1.15;
  const pad = 2 * dpr;
  const n = lines[0]?.values.length ?? 0;
  const x = (/** @type {number} */ i) => (n <= 1 ? 0 : (i / (n - 1)) * w);
  const y = (/** @type {number} */ v) => h - pad - (v / max) * (h - 2 * pad);
  // A faint baseline, so an idle chart still reads as a chart.
  ctx.fillStyle = 'rgba(148, 163, 184, 0.14)';
  ctx.fillRect(0, h - dpr, w, dpr);
  for (const l of lines) {
    ctx.lineWidth = 1.5 * dpr;
    ctx.lineJoin = 'round';
    ctx.strokeStyle = l.color;
    ctx.fillStyle = l.color;
    const path = new Path2D();
    const area = new Path2D();
    /** @type {number[]} x of the points that have no neighbour: drawn as dots, since a line needs two */
    const lone = [];
    let runStart = -1;
    const endRun = (/** @type {number} */ i) => {
      if (runStart < 0) return;
      if (i - 1 === runStart) lone.push(runStart);
      area.lineTo(x(i - 1), h);
      area.lineTo(x(runStart), h);
      area.closePath();
      runStart = -1;
    };
    for (let i = 0; i < l.values.length; i++) {
      const v = l.values[i];
      if (v === null) {
        endRun(i);
        continue;
      }
      if (runStart < 0) {
        runStart = i;
        path.moveTo(x(i), y(v));
        area.moveTo(x(i), h);
        area.lineTo(x(i), y(v));
      } else {
        path.lineTo(x(i), y(v));
        area.lineTo(x(i), y(v));
      }
    }
    endRun(l.values.length);
    if (l.fill) {
      const g = ctx.createLinearGradient(0, 0, 0, h);
      g.addColorStop(0, `${l.color}55`);
      g.addColorStop(1, `${l.color}00`);
      ctx.fillStyle = g;
      ctx.fill(area);
      ctx.fillStyle = l.color;
    }
    ctx.stroke(path);
    for (const i of lone) {
      ctx.beginPath();
      ctx.arc(x(i), y(/** @type {number} */ (l.values[i])), 2 * dpr, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
}

// ---- boot --------------------------------------------------------------------------------------------------

/** Starts the page: a model, a view drawn once per frame, and the stream. */
function boot() {
  const model = new ClusterModel();
  const view = new View(model);
  let frame = 0;
  const draw = () => {
    frame = 0;
    view.render(model.takeChanges());
  };
  const schedule = () => {
    frame ||= requestAnimationFrame(draw);
  };
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const client = new StreamClient(model, {
    url: (query) => `${scheme}//${location.host}${STREAM_PATH}?${query}`,
    onData: schedule,
    onStatus: (s) => {
      view.setStatus(s);
      schedule();
    },
  });
  client.start();
  // For a person poking at the page in devtools (and for profiling): the live objects, read-only by convention.
  Object.defineProperty(window, 'borealis', { value: Object.freeze({ model, view, client }) });
  view.setStatus(client.status);
  schedule();
  setInterval(() => view.tick(), 1000);
  // The first tick would be a second away: draw the empty charts now.
  requestAnimationFrame(() => view.tick());
  window.addEventListener('resize', () => view.tick());
}

if (typeof document !== 'undefined' && document.getElementById('zones')) boot();
