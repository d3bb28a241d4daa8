/**
 * The four upstreams every target sits in front of. For throughput and latency: nginx instances
 * with one worker each, answering a fixed body (the cheapest real HTTP server, so the proxy's cost
 * shows). For the balancing-quality runs: Node backends that count what they answered, one of them
 * optionally slow.
 */
import { request } from 'node:http';
import { HOST, freePort, waitForPort } from './net.js';
import { type Upstream, backendConfig, writeNginx } from './nginx.js';
import type { ManagedProcess, Supervisor } from './processes.js';
import { REPO_ROOT, nodeModuleArgs } from './programs.js';

const BACKEND_COUNT = 4;
const START_TIMEOUT_MS = 30_000;

export interface Backends {
  kind: 'nginx' | 'node';
  upstreams: Upstream[];
  procs: ManagedProcess[];
}

export async function startNginxBackends(sup: Supervisor, nginx: string, dir: string, cpus: string | undefined): Promise<Backends> {
  const upstreams: Upstream[] = [];
  const procs: ManagedProcess[] = [];
  for (let i = 1; i <= BACKEND_COUNT; i++) {
    const port = await freePort();
    const name = `nginx-backend-${i}`;
    const p = sup.start(name, nginx, writeNginx(dir, name, (d) => backendConfig(d, port)), { cpus });
    procs.push(p);
    upstreams.push({ port, weight: 1 });
  }
  await Promise.all(
    procs.map((p, i) => waitForPort(upstreams[i]!.port, START_TIMEOUT_MS, () => (p.exitStatus ? `${p.name} exited: ${p.output.slice(-2000)}` : null))),
  );
  return { kind: 'nginx', upstreams, procs };
}

export interface CountingBackends extends Backends {
  /** Requests each backend has answered so far, in upstream order. */
  counts(): Promise<number[]>;
}

function getCount(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: HOST, port, path: '/__count', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve((JSON.parse(body) as { count: number }).count));
    });
    req.on('error', reject);
    req.end();
  });
}

/** `delaysMs[i]`: how long backend i waits before answering; `weights[i]`: the weight proxies give it. */
export async function startCountingBackends(
  sup: Supervisor,
  name: string,
  delaysMs: readonly number[],
  weights: readonly number[],
  cpus: string | undefined,
): Promise<CountingBackends> {
  const proc = sup.start(name, process.execPath, [...nodeModuleArgs('bench/balancer/counting-backend'), delaysMs.join(',')], {
    cpus,
    cwd: REPO_ROOT,
    stdinPipe: true,
  });
  const m = await proc.waitForOutput(/\{"ports":\[([\d,]+)\]\}/, START_TIMEOUT_MS);
  const ports = m[1]!.split(',').map(Number);
  const upstreams = ports.map((port, i) => ({ port, weight: weights[i] ?? 1 }));
  return { kind: 'node', upstreams, procs: [proc], counts: () => Promise.all(ports.map(getCount)) };
}
