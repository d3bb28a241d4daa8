/**
 * `borealis events`: tails the master's event stream (GET /v1/events, protobuf), one line per event, or one JSON
 * object per line with --json. On a disconnect (the master restarted, the network dropped, or the master cut a
 * slow reader off) it reconnects with backoff and resumes after the last seq it printed, so the output has no gap
 * and no duplicate; when the master can no longer replay that far (or restarted) it prints the resync it got.
 */
import WebSocket from 'ws';
import type { ClusterEvent } from '../master/types.js';
import {
  EVENTS_PATH,
  EVENTS_PROTOBUF_SUBPROTOCOL,
  EVENT_TYPES,
  type ResyncMessage,
  type StreamMessage,
  decodeFrameProto,
} from '../proto/events.js';
import { errorResponse, resolveMaster } from './client.js';
import { CliError, ExitCode, usage } from './exit.js';

export interface EventsFlags {
  master?: string;
  json?: boolean;
  since?: string;
  job?: string;
  agent?: string;
  type?: string;
  /** Stop after this many events (scripts, tests). */
  limit?: string;
}

type Out = (text: string) => void;

/** First reconnect after 100 ms, doubling to 5 s: fast after a blip, gentle on a master that is down. */
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5_000;
/** The first connection gets this long; a master that does not answer by then is not there (exit 3). */
const CONNECT_TIMEOUT_MS = 5_000;

/** One line per event: seq, UTC time, type, then what it is about. */
export function formatEvent(e: ClusterEvent): string {
  const time = new Date(e.at).toISOString().slice(11, 23);
  const subject = e.taskId ?? e.job ?? e.agentId ?? '';
  const parts = [String(e.seq).padStart(6), time, e.type.padEnd(18), subject];
  if (e.state !== undefined) parts.push(`-> ${e.state}`);
  if (e.agentId !== undefined && subject !== e.agentId) parts.push(`on ${e.agentId}`);
  if (e.data !== undefined && Object.keys(e.data).length > 0) parts.push(JSON.stringify(e.data));
  return parts.join(' ').trimEnd();
}

function formatResync(m: ResyncMessage): string {
  const s = m.snapshot;
  return `-- resync at seq ${m.seq}: ${m.reason}; now ${s.jobs.length} jobs, ${s.tasks.length} tasks, ${s.agents.length} agents`;
}

function checkFlags(flags: EventsFlags): { since?: number; limit?: number; query: URLSearchParams } {
  const query = new URLSearchParams();
  const out: { since?: number; limit?: number; query: URLSearchParams } = { query };
  if (flags.since !== undefined) {
    if (!/^\d{1,16}$/.test(flags.since)) throw usage(`--since must be a seq (a whole number >= 0), got ${JSON.stringify(flags.since)}`);
    out.since = Number(flags.since);
  }
  if (flags.limit !== undefined) {
    if (!/^[1-9]\d{0,15}$/.test(flags.limit)) throw usage(`--limit must be a whole number >= 1, got ${JSON.stringify(flags.limit)}`);
    out.limit = Number(flags.limit);
  }
  if (flags.type !== undefined) {
    const bad = flags.type.split(',').filter((t) => !(EVENT_TYPES as readonly string[]).includes(t.trim()));
    if (bad.length > 0) throw usage(`--type: unknown event type ${bad.join(', ')} (known: ${EVENT_TYPES.join(', ')})`);
    query.set('type', flags.type);
  }
  if (flags.job !== undefined) query.set('job', flags.job);
  if (flags.agent !== undefined) query.set('agent', flags.agent);
  return out;
}

/**
 * Runs until SIGINT/SIGTERM (or `--limit` events). Fails with UNREACHABLE when the first connection fails, and
 * with the master's error when it refuses the subscription (a bad filter); later disconnects are retried forever.
 */
export async function eventsCommand(flags: EventsFlags, out: Out, err: Out): Promise<void> {
  const { since, limit, query } = checkFlags(flags);
  const base = `ws://${resolveMaster(flags.master)}${EVENTS_PATH}`;
  let lastSeq = since;
  let epoch: string | undefined;
  let printed = 0;
  let everOpen = false;
  let backoff = RECONNECT_MIN_MS;
  let stopping = false;
  let current: WebSocket | null = null;
  let retryTimer: NodeJS.Timeout | null = null;

  return new Promise<void>((resolve, reject) => {
    const finish = (e?: CliError): void => {
      if (stopping) return;
      stopping = true;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (retryTimer) clearTimeout(retryTimer);
      current?.removeAllListeners();
      current?.on('error', () => undefined);
      current?.terminate();
      if (e) reject(e);
      else resolve();
    };
    const onSignal = (): void => finish();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);

    const onMessage = (m: StreamMessage): void => {
      switch (m.type) {
        case 'hello':
          epoch = m.epoch;
          // A filtered stream may print nothing for a while: resume from where the master started us at least.
          if (lastSeq === undefined || m.seq > lastSeq) lastSeq = m.seq;
          return;
        case 'resync':
          epoch = m.epoch;
          lastSeq = m.seq;
          out(flags.json ? JSON.stringify(m) : formatResync(m));
          return;
        case 'close':
          if (!flags.json) err(`-- master closed the stream (${m.code}): ${m.reason}`);
          return;
        case 'events':
          for (const e of m.events) {
            // Never print an event twice, whatever a reconnect replays.
            if (lastSeq !== undefined && e.seq <= lastSeq) continue;
            lastSeq = e.seq;
            out(flags.json ? JSON.stringify(e) : formatEvent(e));
            if (limit !== undefined && ++printed >= limit) {
              finish();
              return;
            }
          }
      }
    };

    const connect = (): void => {
      retryTimer = null;
      const q = new URLSearchParams(query);
      if (lastSeq !== undefined) q.set('since', String(lastSeq));
      if (epoch !== undefined) q.set('epoch', epoch);
      const qs = q.toString();
      const ws = new WebSocket(qs === '' ? base : `${base}?${qs}`, [EVENTS_PROTOBUF_SUBPROTOCOL], {
        handshakeTimeout: CONNECT_TIMEOUT_MS,
        perMessageDeflate: false,
      });
      current = ws;
      ws.on('open', () => {
        everOpen = true;
        backoff = RECONNECT_MIN_MS;
      });
      ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
        if (stopping) return;
        if (!isBinary) return finish(new CliError(ExitCode.SERVER_ERROR, 'the master sent a text frame on a protobuf stream'));
        try {
          onMessage(decodeFrameProto(Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[])));
        } catch (e) {
          finish(new CliError(ExitCode.SERVER_ERROR, (e as Error).message));
        }
      });
      ws.on('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status === 503 && everOpen) return retry();
          const e = errorResponse(status, body);
          const exit = status === 400 ? ExitCode.USAGE : status === 404 ? ExitCode.NOT_FOUND : ExitCode.SERVER_ERROR;
          // The message already lists the query's problems: they are not repeated line by line.
          finish(new CliError(exit, e.message, [], e.code));
        });
      });
      ws.on('error', (e: Error & { code?: string }) => {
        if (stopping || everOpen) return; // 'close' follows and retries
        finish(new CliError(ExitCode.UNREACHABLE, `cannot reach the master at ${base} (${e.code ?? 'error'}: ${e.message})`));
      });
      ws.on('close', () => {
        if (current === ws && !stopping && everOpen) retry();
      });
    };

    const retry = (): void => {
      if (stopping || retryTimer) return;
      if (!flags.json) err(`-- disconnected; reconnecting in ${backoff} ms (resume after seq ${lastSeq ?? 'now'})`);
      retryTimer = setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, RECONNECT_MAX_MS);
    };

    connect();
  });
}
