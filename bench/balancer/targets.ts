/**
 * The proxies compared, each started in front of a given set of upstreams and pinned to the
 * proxy's cores. One place decides what a target is, whether it can run here, and how it starts.
 */
import { type BorealisSupport, startBorealis } from './borealis.js';
import { writeHaproxy, haproxyConfig } from './haproxy.js';
import { HOST, freePort, waitForPort } from './net.js';
import { type Upstream, proxyConfig, writeNginx } from './nginx.js';
import type { ManagedProcess, Supervisor } from './processes.js';
import { REPO_ROOT, nodeModuleArgs } from './programs.js';

/** In the order they are run and printed: the reference points first, then Borealis, then its peers. */
export const TARGETS = ['direct', 'haproxy', 'nginx', 'borealis', 'borealis-native-free', 'http-proxy'] as const;
export type TargetName = (typeof TARGETS)[number];

/** Proxies start in well under a second; tsx-compiled Node peers in tests take longer on a busy machine. */
const START_TIMEOUT_MS = 30_000;

export interface Installed {
  nginx: string | null;
  haproxy: string | null;
  borealis: BorealisSupport;
  /** Node arguments running the `borealis` CLI, when not this repository's own. */
  borealisCli?: readonly string[];
}

/** Why `name` cannot run on this machine, or null when it can. */
export function skipReason(name: TargetName, inst: Installed): string | null {
  switch (name) {
    case 'haproxy':
      return inst.haproxy === null ? 'haproxy is not installed (apt-get install haproxy)' : null;
    case 'nginx':
      return inst.nginx === null ? 'nginx is not installed (apt-get install nginx)' : null;
    case 'borealis':
    case 'borealis-native-free':
      return inst.borealis.missing;
    case 'direct':
    case 'http-proxy':
      return null;
  }
}

export interface RunningTarget {
  name: TargetName;
  url: string;
  /** What serves the client side: for Borealis, what its start-up log said it runs on. */
  transport: string;
  port: number;
  proc: ManagedProcess | null;
}

export interface TargetContext {
  sup: Supervisor;
  inst: Installed;
  /** Where configs go (the run's temp dir). */
  dir: string;
  cpus: string | undefined;
  /** Balancer threads for Borealis (only when it has `--threads`). */
  threads?: number | undefined;
  /** Distinguishes several instances of one target in one run (config dirs, process names). */
  tag?: string;
}

function exitedWhy(p: ManagedProcess, name: string): () => string | null {
  return () => (p.exitStatus ? `${name} exited (${p.exitStatus.code ?? p.exitStatus.signal}): ${p.output.slice(-2000)}` : null);
}

async function startListening(ctx: TargetContext, name: string, file: string, args: (port: number) => string[]): Promise<{ proc: ManagedProcess; port: number }> {
  const port = await freePort();
  const proc = ctx.sup.start(name, file, args(port), { cpus: ctx.cpus });
  await waitForPort(port, START_TIMEOUT_MS, exitedWhy(proc, name));
  return { proc, port };
}

export async function startTarget(name: TargetName, ctx: TargetContext, upstreams: readonly Upstream[]): Promise<RunningTarget> {
  const why = skipReason(name, ctx.inst);
  if (why !== null) throw new Error(`${name}: ${why}`);
  const id = ctx.tag ? `${name}-${ctx.tag}` : name;
  switch (name) {
    case 'direct': {
      const port = upstreams[0]!.port;
      return { name, url: `http://${HOST}:${port}/`, transport: 'backend', port, proc: null };
    }
    case 'haproxy': {
      const { proc, port } = await startListening(ctx, id, ctx.inst.haproxy!, (p) => writeHaproxy(ctx.dir, id, haproxyConfig(p, upstreams)));
      return { name, url: `http://${HOST}:${port}/`, transport: 'haproxy', port, proc };
    }
    case 'nginx': {
      const { proc, port } = await startListening(ctx, id, ctx.inst.nginx!, (p) => writeNginx(ctx.dir, id, (d) => proxyConfig(d, p, upstreams)));
      return { name, url: `http://${HOST}:${port}/`, transport: 'nginx', port, proc };
    }
    case 'borealis':
    case 'borealis-native-free': {
      const port = await freePort();
      const { proc, transport } = await startBorealis(ctx.sup, {
        name: id,
        port,
        upstreams,
        native: name === 'borealis',
        threads: ctx.threads,
        cpus: ctx.cpus,
        ...(ctx.inst.borealisCli !== undefined ? { cli: ctx.inst.borealisCli } : {}),
      });
      return { name, url: `http://${HOST}:${port}/`, transport, port, proc };
    }
    case 'http-proxy': {
      const list = upstreams.map((u) => `${HOST}:${u.port}`).join(',');
      const proc = ctx.sup.start(id, process.execPath, [...nodeModuleArgs('bench/balancer/http-proxy-peer'), list], {
        cpus: ctx.cpus,
        cwd: REPO_ROOT,
        stdinPipe: true,
      });
      const m = await proc.waitForOutput(/\{"port":(\d+)\}/, START_TIMEOUT_MS);
      const port = Number(m[1]);
      return { name, url: `http://${HOST}:${port}/`, transport: 'node:http', port, proc };
    }
  }
}
