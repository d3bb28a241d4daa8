import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { RoundRequest, RoundResult, WorkerInit } from './messages.js';

/**
 * Rounds handed to the threads at once. Two keep threads busy while this thread prepares the next;
 * four also let a thread that finished its part start the next round while another thread is still
 * on a slow tail (a nearly full cluster) of the current one.
 */
export const ROUNDS_IN_FLIGHT = 4;

/**
 * The piscina pool of placement threads. Workers are started up front (min = max) and never idle
 * out: a placement round must not wait for a thread to boot. When running from TypeScript sources
 * (tests), the worker file is the .ts one, loaded through tsx.
 */
export class PlacementPool {
  private readonly piscina: Piscina<RoundRequest, RoundResult>;
  readonly threads: number;

  constructor(threads: number, init: WorkerInit) {
    const self = fileURLToPath(import.meta.url);
    const fromSource = self.endsWith('.ts');
    const filename = new URL(fromSource ? './worker.ts' : './worker.js', import.meta.url).href;
    this.threads = threads;
    this.piscina = new Piscina<RoundRequest, RoundResult>({
      filename,
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: Number.POSITIVE_INFINITY,
      // Every round in flight may sit at a thread: when it finishes one it starts the next from its
      // own port, instead of waiting for this thread's event loop to hand it over (which, while
      // this thread is busy finishing another round, left placement threads idle a third of the time).
      concurrentTasksPerWorker: ROUNDS_IN_FLIGHT,
      workerData: init,
      execArgv: fromSource ? ['--import', 'tsx'] : [],
    });
  }

  run(req: RoundRequest): Promise<RoundResult> {
    return this.piscina.run(req);
  }

  async close(): Promise<void> {
    await this.piscina.destroy();
  }
}
