/**
 * The two transports side by side on this machine (not a test: run it by hand).
 *
 *   npx tsx test/transport/compare.ts [--seconds 5] [--connections 32] [--frames 200000] [--rounds 2]
 *
 * HTTP: wrk (a separate process) against GET /v1/cluster and GET /health of a real master API (startApiServer,
 * an in-process master with 3 simulated agents and a 30-task job), for a bounded time. WebSocket: a client in a
 * child process (ws) receives `frames` 100-byte binary frames that the server pumps as the event stream does
 * (stop above 1 MiB buffered, resume on onWritten), then sends as many to the server; frames/s is counted where
 * they arrive. Rounds alternate the transports, since the machine is shared and noisy: compare within a run.
 * Everything listens on 127.0.0.1, port 0.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { startApiServer } from '../../src/api/index.js';
import { Master } from '../../src/master/index.js';
import { SimAgent } from '../../src/master/testing/sim-agent.js';
import { createHttpServer } from '../../src/transport/index.js';
import type { TransportKind, WsSocket } from '../../src/transport/types.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '32' },
    frames: { type: 'string', default: '200000' },
    rounds: { type: 'string', default: '2' },
  },
});
const SECONDS = Number(values.seconds);
const CONNECTIONS = Number(values.connections);
const FRAMES = Number(values.frames);
const ROUNDS = Number(values.rounds);
const HIGH_WATER = 1024 * 1024;

function wrk(url: string): Promise<{ rps: number; p50: string; p99: string }> {
  return new Promise((resolve, reject) => {
    execFile('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${SECONDS}s`, '--latency', url], { timeout: (SECONDS + 30) * 1000 }, (err, out) => {
      if (err) return reject(err);
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
      const p50 = /\s50%\s+(\S+)/.exec(out)?.[1] ?? '?';
      const p99 = /\s99%\s+(\S+)/.exec(out)?.[1] ?? '?';
      const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(out);
      if (errors) return reject(new Error(`wrk saw errors: ${errors[0]}`));
      resolve({ rps, p50, p99 });
    });
  });
}

async function http(kind: TransportKind): Promise<Record<string, string>> {
  const dataDir = await mkdtemp(join(tmpdir(), 'borealis-compare-'));
  const master = await Master.open({ dataDir, fsync: false, logger: pino({ level: 'silent' }), allocator: { workers: 1 } });
  const api = await startApiServer(master, { host: '127.0.0.1', port: 0 }, { transport: kind });
  const agents: SimAgent[] = [];
  try {
    for (let i = 1; i <= 3; i++) {
      const a = new SimAgent({ id: `sim-${i}` });
      await a.connect(master);
      agents.push(a);
    }
    await master.submitJob({ name: 'web', type: 'service', instances: 30, command: 'sleep 1000', resources: { cpus: 0.1, mem: '16Mi' } });
    const cluster = await wrk(`${api.url}/v1/cluster`);
    const health = await wrk(`${api.url}/health`);
    return {
      'GET /v1/cluster req/s': cluster.rps.toFixed(0),
      'p50/p99': `${cluster.p50}/${cluster.p99}`,
      'GET /health req/s': health.rps.toFixed(0),
      'p50/p99 ': `${health.p50}/${health.p99}`,
    };
  } finally {
    for (const a of agents) a.stop();
    await master.close();
    await api.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** The client side, in its own process: receives FRAMES, then sends FRAMES (pausing above 1 MiB buffered). */
const CLIENT = `
import WebSocket from 'ws';
const [url, n] = [process.argv[1], Number(process.argv[2])];
const ws = new WebSocket(url, 'bench', { perMessageDeflate: false });
let got = 0, t0 = 0;
ws.on('message', (d) => {
  if (got === 0) t0 = performance.now();
  if (++got === n) {
    const ms = performance.now() - t0;
    process.stdout.write(JSON.stringify({ downMs: ms }) + '\\n');
    const frame = Buffer.alloc(100);
    let sent = 0;
    const pump = () => {
      while (sent < n && ws.bufferedAmount < ${HIGH_WATER}) { ws.send(frame); sent++; }
      if (sent < n) setImmediate(pump);
    };
    pump();
  }
});
ws.on('close', () => process.exit(0));
`;

async function frames(kind: TransportKind): Promise<Record<string, string>> {
  const server = createHttpServer({ transport: kind });
  let upMs = 0;
  let socket: WsSocket | null = null;
  const done = new Promise<void>((resolve) => {
    server.websocket('/bench', {
      protocols: ['bench'],
      maxPayloadBytes: 1024,
      onOpen: (s) => {
        socket = s;
        const frame = new Uint8Array(100);
        let sent = 0;
        const pump = (): void => {
          while (sent < FRAMES && s.bufferedAmount <= HIGH_WATER) {
            sent++;
            s.send(frame, pump);
          }
        };
        pump();
        let got = 0;
        let t0 = 0;
        s.onMessage(() => {
          if (got === 0) t0 = performance.now();
          if (++got === FRAMES) {
            upMs = performance.now() - t0;
            resolve();
          }
        });
      },
    });
  });
  const addr = await server.listen({ host: '127.0.0.1', port: 0 });
  const child = spawn(process.execPath, ['--input-type=module', '-e', CLIENT, `ws://127.0.0.1:${addr.port}/bench`, String(FRAMES)], {
    cwd: process.cwd(),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const timeout = setTimeout(() => child.kill('SIGKILL'), 120_000);
  try {
    await done;
    const downMs = (JSON.parse(out.trim().split('\n')[0]) as { downMs: number }).downMs;
    return {
      'server→client frames/s': ((FRAMES / downMs) * 1000).toFixed(0),
      'client→server frames/s': ((FRAMES / upMs) * 1000).toFixed(0),
    };
  } finally {
    clearTimeout(timeout);
    (socket as WsSocket | null)?.close(1000, 'done');
    await new Promise((r) => (child.exitCode === null ? child.once('exit', r) : r(null)));
    await server.close();
  }
}

const rows: Record<string, string>[] = [];
for (let round = 1; round <= ROUNDS; round++) {
  for (const kind of (round % 2 === 1 ? ['node', 'uws'] : ['uws', 'node']) as TransportKind[]) {
    rows.push({ round: String(round), transport: kind, ...(await http(kind)), ...(await frames(kind)) });
  }
}
console.table(rows);
console.log(`wrk -t1 -c${CONNECTIONS} -d${SECONDS}s; ${FRAMES} frames of 100 bytes each way; node ${process.version}`);
