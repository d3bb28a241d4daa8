/**
 * Every process the balancer benchmark starts goes through one Supervisor, so that all of them are
 * stopped — by their own process-group id, never by name — at the end, on an error and on Ctrl-C.
 *
 * Each child is spawned detached, as the leader of its own process group: a signal to `-pid` then
 * also reaches what it forked (nginx's worker, a shell's child), and `kill(-pid, 0)` failing with
 * ESRCH proves the whole group is gone. Detached children do not see the terminal's Ctrl-C, so the
 * harness handles SIGINT/SIGTERM itself and stops them in order.
 */
import { type ChildProcess, spawn } from 'node:child_process';

/** How long a process gets to exit after SIGTERM before its group is SIGKILLed. */
const STOP_GRACE_MS = 3000;
/** Bytes of stdout/stderr kept per process, for error messages and log-line detection. */
const OUTPUT_TAIL_BYTES = 16 * 1024;

export interface StartOptions {
  /** CPU list for `taskset -c` (e.g. "0" or "1-3"); undefined runs unpinned. */
  cpus?: string | undefined;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /**
   * Keep a pipe on the child's stdin. Node children of the harness exit when it closes, so they die
   * with the harness even if it is SIGKILLed (nginx and HAProxy have no such hook).
   */
  stdinPipe?: boolean;
  /** Do not log start (short-lived load generators, started many times per run). */
  quiet?: boolean;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly exited: Promise<Exit>;
  readonly quiet: boolean;
  #child: ChildProcess;
  #out = '';
  #stdout = '';
  #exit: Exit | undefined;
  #listeners: ((chunk: string) => void)[] = [];

  constructor(name: string, child: ChildProcess, quiet: boolean) {
    if (child.pid === undefined) throw new Error(`${name}: spawn failed`);
    this.name = name;
    this.quiet = quiet;
    this.pid = child.pid;
    this.#child = child;
    const keep = (buf: Buffer): void => {
      const s = buf.toString('utf8');
      this.#out = (this.#out + s).slice(-OUTPUT_TAIL_BYTES);
      for (const l of this.#listeners) l(s);
    };
    child.stdout?.on('data', (buf: Buffer) => {
      this.#stdout = (this.#stdout + buf.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
      keep(buf);
    });
    child.stderr?.on('data', keep);
    // A closed stdin pipe must not crash the harness with EPIPE.
    child.stdin?.on('error', () => {});
    // 'close', not 'exit': it also waits for the output pipes to drain, so `output` is complete.
    this.exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        this.#exit = { code, signal };
        resolve(this.#exit);
      });
    });
  }

  /** The last bytes the process wrote to stdout and stderr. */
  get output(): string {
    return this.#out;
  }

  /** The last bytes of stdout alone (results that a program prints there). */
  get stdout(): string {
    return this.#stdout;
  }

  get exitStatus(): Exit | undefined {
    return this.#exit;
  }

  /** Resolves with the first output that matches, or rejects when the process exits or time runs out. */
  waitForOutput(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const now = re.exec(this.#out);
    if (now) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#listeners = this.#listeners.filter((l) => l !== onData);
      };
      const onData = (): void => {
        const m = re.exec(this.#out);
        if (m) {
          done();
          resolve(m);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name} (pid ${this.pid}): no ${re} within ${timeoutMs} ms; output: ${this.#out.slice(-2000)}`));
      }, timeoutMs);
      this.#listeners.push(onData);
      void this.exited.then((e) => {
        if (!this.#listeners.includes(onData)) return;
        done();
        reject(new Error(`${this.name} exited (${e.code ?? e.signal}) before ${re}; output: ${this.#out.slice(-2000)}`));
      });
    });
  }

  /** Closes stdin: a harness Node child takes that as its cue to exit. */
  closeStdin(): void {
    this.#child.stdin?.end();
  }
}

/** True while any process in the group led by `pgid` exists. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signalGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    // Already gone.
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Supervisor {
  readonly #live = new Map<number, ManagedProcess>();
  /** Every process group ever started, for the end-of-run check and for tests. */
  readonly started: { name: string; pid: number }[] = [];
  readonly #log: (line: string) => void;
  readonly #taskset: string | null;
  #onExit: (() => void) | undefined;
  /** Set by stopAll(): a phase still running (after Ctrl-C) must not start anything new. */
  #closing = false;

  constructor(o: { log: (line: string) => void; taskset: string | null }) {
    this.#log = o.log;
    this.#taskset = o.taskset;
    // Last resort for an unexpected process.exit(): SIGKILL synchronously whatever still runs.
    this.#onExit = () => {
      for (const p of this.#live.values()) signalGroup(p.pid, 'SIGKILL');
    };
    process.on('exit', this.#onExit);
  }

  start(name: string, file: string, args: readonly string[], o: StartOptions = {}): ManagedProcess {
    if (this.#closing) throw new Error(`not starting ${name}: the benchmark is stopping`);
    // taskset execs the program, so the pid (and process group) stays the program's own.
    const pinned = o.cpus !== undefined && this.#taskset !== null;
    const cmd = pinned ? this.#taskset! : file;
    const argv = pinned ? ['-c', o.cpus!, file, ...args] : [...args];
    const child = spawn(cmd, argv, {
      detached: true,
      stdio: [o.stdinPipe ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      env: o.env ?? process.env,
      ...(o.cwd !== undefined ? { cwd: o.cwd } : {}),
    });
    child.on('error', () => {}); // surfaces as an exit; spawn errors are thrown below
    const p = new ManagedProcess(name, child, o.quiet === true);
    this.#live.set(p.pid, p);
    this.started.push({ name, pid: p.pid });
    // A leader that exits on its own may leave its group behind (an nginx worker); stopAll() must still see it.
    void p.exited.then(() => {
      if (!groupAlive(p.pid)) this.#live.delete(p.pid);
    });
    if (!o.quiet) this.#log(`started ${name} (pid ${p.pid}${pinned ? `, cpus ${o.cpus}` : ''})`);
    return p;
  }

  /** SIGTERM the group, wait for it to empty, SIGKILL after the grace period. */
  async stop(p: ManagedProcess): Promise<void> {
    if (p.exitStatus === undefined || groupAlive(p.pid)) {
      p.closeStdin();
      signalGroup(p.pid, 'SIGTERM');
      const deadline = Date.now() + STOP_GRACE_MS;
      while ((p.exitStatus === undefined || groupAlive(p.pid)) && Date.now() < deadline) await sleep(20);
      if (p.exitStatus === undefined || groupAlive(p.pid)) {
        signalGroup(p.pid, 'SIGKILL');
        await p.exited;
        while (groupAlive(p.pid)) await sleep(20);
      }
    }
    this.#live.delete(p.pid);
    if (!p.quiet) this.#log(`stopped ${p.name} (pid ${p.pid})`);
  }

  /** Stops every live process, all at once: each has its own group, so order does not matter. */
  async stopAll(): Promise<void> {
    this.#closing = true;
    await Promise.all([...this.#live.values()].map((p) => this.stop(p)));
  }

  /** Process groups that still exist; empty after stopAll(). */
  survivors(): { name: string; pid: number }[] {
    return this.started.filter((s) => groupAlive(s.pid));
  }

  /** Removes the exit hook; call once everything is stopped. */
  dispose(): void {
    if (this.#onExit) process.off('exit', this.#onExit);
    this.#onExit = undefined;
  }
}
