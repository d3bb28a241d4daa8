import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { type ApiServer, startApiServer } from '../../src/api/index.js';
import type { EventStreamOptions } from '../../src/events/stream.js';
import type { Master, MasterOptions } from '../../src/master/index.js';
import type { ClusterEvent } from '../../src/master/types.js';
import { EVENTS_PATH, EVENTS_PROTOBUF_SUBPROTOCOL, type StreamMessage, decodeFrame } from '../../src/proto/events.js';
import { waitFor } from '../api/helpers.js';

/** A subscriber on a real socket: every decoded message, the events among them, and how it closed. */
export interface TestClient {
  ws: WebSocket;
  messages: StreamMessage[];
  events: ClusterEvent[];
  /** Resolves on close with the code and reason the client saw. */
  closed: Promise<{ code: number; reason: string }>;
  /** The raw TCP socket (to pause it: a reader that never reads). */
  socket: () => Socket;
  last: () => number;
  close: () => void;
}

export async function subscribe(addr: string, query = '', protocols: string | string[] = EVENTS_PROTOBUF_SUBPROTOCOL): Promise<TestClient> {
  const ws = new WebSocket(`ws://${addr}${EVENTS_PATH}${query === '' ? '' : `?${query}`}`, protocols, { perMessageDeflate: false });
  const c: TestClient = {
    ws,
    messages: [],
    events: [],
    closed: new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }))),
    socket: () => (ws as unknown as { _socket: Socket })._socket,
    last: () => c.events.at(-1)?.seq ?? 0,
    close: () => ws.close(),
  };
  ws.on('message', (data: Buffer, isBinary) => {
    const m = decodeFrame(isBinary ? new Uint8Array(data) : data.toString('utf8'));
    c.messages.push(m);
    if (m.type === 'events') c.events.push(...m.events);
  });
  ws.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`refused: ${res.statusCode}`)));
    ws.once('error', reject);
  });
  await waitFor(() => c.messages.length > 0, 'the first message (hello or resync)');
  return c;
}

/** An upgrade the server should refuse: its status and error body. */
export function refused(addr: string, query: string, protocols?: string | string[]): Promise<{ status: number; body: { code?: string; message?: string } }> {
  return new Promise((resolve, reject) => {
    const ws = protocols === undefined
      ? new WebSocket(`ws://${addr}${EVENTS_PATH}${query}`)
      : new WebSocket(`ws://${addr}${EVENTS_PATH}${query}`, protocols);
    ws.on('open', () => reject(new Error('the upgrade was accepted')));
    ws.on('error', () => undefined);
    ws.on('unexpected-response', (_req, res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as { code?: string } }));
    });
  });
}

/** Asserts strictly consecutive seqs (no gap, no duplicate) and returns them. */
export function seqs(events: readonly ClusterEvent[]): number[] {
  return events.map((e) => e.seq);
}

export function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let s = from; s <= to; s++) out.push(s);
  return out;
}

/** What the stream should carry for an event: its JSON form (undefined fields dropped). */
export function wire(events: readonly ClusterEvent[]): ClusterEvent[] {
  return JSON.parse(JSON.stringify(events)) as ClusterEvent[];
}

/** A master from the API fixture plus a second API server on it with these stream options (closed after the test). */
export async function startWithStream(
  fx: ReturnType<typeof import('../api/helpers.js').apiFixture>,
  masterOpts: Partial<MasterOptions>,
  events: EventStreamOptions,
): Promise<{ master: Master; api: ApiServer; addr: string }> {
  const { master } = await fx.start(masterOpts);
  const api = await startApiServer(master, { host: '127.0.0.1', port: 0 }, { events });
  fx.onCleanup(() => api.close());
  return { master, api, addr: `${api.address.host}:${api.address.port}` };
}

/** A small service job whose tasks run until killed. */
export function service(name: string, instances: number): Parameters<Master['submitJob']>[0] {
  return { name, type: 'service', instances, command: 'sleep 1000', resources: { cpus: 0.1, mem: '16Mi' } };
}

export async function running(master: Master, job: string, n: number): Promise<void> {
  await waitFor(() => master.listTasks(job).filter((t) => t.state === 'running').length === n, `${n} running tasks of ${job}`);
}

/** Waits until the bus is quiet for a moment and the client has everything up to its last seq. */
export async function caughtUp(master: Master, last: () => number, what: string): Promise<number> {
  return waitFor(async () => {
    const seq = master.events.lastSeq;
    await new Promise((r) => setTimeout(r, 30));
    return seq === master.events.lastSeq && last() === seq ? seq : false;
  }, what);
}
