import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { RoundRequest, RoundResult, WorkerInit } from './messages.js';

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
      // One round per thread at a time: rounds are already sized to keep a thread busy.
      concurrentTasksPerWorker: 1,
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
