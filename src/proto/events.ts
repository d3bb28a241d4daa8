/**
 * The event stream's wire format (GET /v1/events), both encodings, for the server (src/events), the CLI and
 * the dashboard. One stream is a sequence of messages:
 *
 *   hello | resync      first, exactly one: where the stream starts (resync: with a snapshot of the state)
 *   events*             batches of consecutive events, oldest first, seqs strictly increasing
 *   close?              just before a close the server initiates, with the seq to resume from
 *
 * `borealis.v1.protobuf`: every binary frame is one EventFrame (borealis.proto).
 * `borealis.v1.json`: every text frame is a JSON array of ClusterEvents (a batch) or an object whose `type`
 * is "hello", "resync" or "close" with the same fields as the protobuf messages (camelCase).
 */
import protobuf from 'protobufjs';
import type { AgentView, ClusterEvent, ClusterView, JobView, TaskView } from '../master/types.js';
import { BorealisError, ErrorCodes } from '../api/errors.js';
import { TO_OBJECT, root, taskStateFromWire, taskStateToWire } from './index.js';

export const EVENTS_PROTOBUF_SUBPROTOCOL = 'borealis.v1.protobuf';
export const EVENTS_JSON_SUBPROTOCOL = 'borealis.v1.json';
/** In the server's order of preference when a client offers both: protobuf is ~2x smaller and cheaper to decode. */
export const EVENT_SUBPROTOCOLS = [EVENTS_PROTOBUF_SUBPROTOCOL, EVENTS_JSON_SUBPROTOCOL] as const;
export type EventEncoding = 'protobuf' | 'json';

export const EVENTS_PATH = '/v1/events';

/** Every ClusterEvent type, for `type=` filters (the compile-time check below keeps it complete). */
export const EVENT_TYPES = [
  'job_submitted',
  'job_scaled',
  'job_killed',
  'job_finished',
  'task_state',
  'task_placed',
  'agent_registered',
  'agent_reregistered',
  'agent_lost',
  'agent_draining',
  'agent_undrained',
  'agent_removed',
  'task_health',
  'task_killing',
  'balancer_stats',
  'error',
] as const satisfies readonly ClusterEvent['type'][];
type Missing = Exclude<ClusterEvent['type'], (typeof EVENT_TYPES)[number]>;
const _complete: Missing extends never ? true : Missing = true;
void _complete;

/** Close codes of the event stream (WebSocket numbering: 1xxx standard, 4xxx application). */
export const EventCloseCode = {
  /** The master is shutting down: reconnect (with backoff) and resume with since=lastSeq. */
  GOING_AWAY: 1001,
  /** The client sent a data frame: the stream is read-only (filters go in the query string). */
  CLIENT_DATA: 1003,
  /** The server failed; resume with since=lastSeq. */
  INTERNAL: 1011,
  /**
   * The subscriber fell further behind than its bound (it read too slowly): resume with since=lastSeq, which
   * replays from the ring, or resyncs if those events have left it. HTTP 408's digits: it took too long.
   */
  SLOW_CONSUMER: 4008,
} as const;

export interface StreamSnapshot {
  jobs: JobView[];
  tasks: TaskView[];
  agents: AgentView[];
  cluster: ClusterView;
}

export interface HelloMessage {
  type: 'hello';
  epoch: string;
  seq: number;
  firstSeq: number;
}

export interface ResyncMessage {
  type: 'resync';
  epoch: string;
  seq: number;
  requestedSeq: number;
  reason: string;
  snapshot: StreamSnapshot;
}

export interface CloseMessage {
  type: 'close';
  code: number;
  reason: string;
  lastSeq: number;
}

export interface EventsMessage {
  type: 'events';
  events: ClusterEvent[];
}

export type StreamMessage = EventsMessage | HelloMessage | ResyncMessage | CloseMessage;

export const EventType = root.lookupType('borealis.v1.Event');
export const EventFrameType = root.lookupType('borealis.v1.EventFrame');

// Field tags (field number << 3 | wire type 2, length-delimited): EventFrame.batch = 1, EventBatch.events = 1.
const TAG_FRAME_BATCH = (1 << 3) | 2;
const TAG_BATCH_EVENT = (1 << 3) | 2;

/** One event as the protobuf Event message, encoded (the server caches these per event and reuses them per subscriber). */
export function encodeEventProto(e: ClusterEvent): Uint8Array {
  const m: Record<string, unknown> = { seq: e.seq, atMs: e.at, type: e.type };
  if (e.job !== undefined) m.job = e.job;
  if (e.taskId !== undefined) m.taskId = e.taskId;
  if (e.agentId !== undefined) m.agentId = e.agentId;
  if (e.state !== undefined) m.state = taskStateToWire(e.state);
  if (e.data !== undefined) m.dataJson = JSON.stringify(e.data);
  return EventType.encode(m).finish();
}

/** One event as JSON text (the object a JSON batch holds). */
export function encodeEventJson(e: ClusterEvent): string {
  return JSON.stringify(e);
}

/**
 * An EventFrame{batch} from already-encoded Events: the frame is their concatenation with tags and lengths, so
 * a batch costs a copy, not a re-encode, however many subscribers it goes to.
 */
export function encodeBatchProto(events: readonly Uint8Array[]): Uint8Array {
  const w = protobuf.Writer.create();
  w.uint32(TAG_FRAME_BATCH).fork();
  for (const b of events) w.uint32(TAG_BATCH_EVENT).bytes(b);
  w.ldelim();
  return w.finish();
}

export function encodeBatchJson(events: readonly string[]): string {
  return `[${events.join(',')}]`;
}

/** hello / resync / close, in either encoding. */
export function encodeControlProto(m: HelloMessage | ResyncMessage | CloseMessage): Uint8Array {
  switch (m.type) {
    case 'hello':
      return EventFrameType.encode({ hello: { epoch: m.epoch, seq: m.seq, firstSeq: m.firstSeq } }).finish();
    case 'resync':
      return EventFrameType.encode({
        resync: { epoch: m.epoch, seq: m.seq, requestedSeq: m.requestedSeq, reason: m.reason, snapshotJson: JSON.stringify(m.snapshot) },
      }).finish();
    case 'close':
      return EventFrameType.encode({ close: { code: m.code, reason: m.reason, lastSeq: m.lastSeq } }).finish();
  }
}

export function encodeControlJson(m: HelloMessage | ResyncMessage | CloseMessage): string {
  return JSON.stringify(m);
}

export interface EventMsg {
  seq?: number;
  atMs?: number;
  type?: string;
  job?: string;
  taskId?: string;
  agentId?: string;
  state?: number;
  dataJson?: string;
}

function malformed(what: string, err?: unknown): BorealisError {
  return new BorealisError(ErrorCodes.PROTOCOL, `malformed event stream frame: ${what}${err ? ` (${(err as Error).message})` : ''}`);
}

/**
 * A protobuf Event as the ClusterEvent it was, built in the bus' field order (type, job, taskId, agentId, state,
 * data, seq, at) so that it serialises to the same JSON text as the published one. `bad` makes the error for a
 * data_json that does not parse (the stream client and the event log blame different parties).
 */
export function eventFromProto(m: EventMsg, bad: (what: string, err: unknown) => Error = malformed): ClusterEvent {
  const e = { type: (m.type ?? '') as ClusterEvent['type'] } as ClusterEvent;
  if (m.job) e.job = m.job;
  if (m.taskId) e.taskId = m.taskId;
  if (m.agentId) e.agentId = m.agentId;
  if (m.state) {
    const s = taskStateFromWire(m.state);
    if (s) e.state = s;
  }
  if (m.dataJson) {
    try {
      e.data = JSON.parse(m.dataJson) as Record<string, unknown>;
    } catch (err) {
      throw bad(`event ${m.seq ?? 0} data_json`, err);
    }
  }
  e.seq = m.seq ?? 0;
  e.at = m.atMs ?? 0;
  return e;
}

/** A binary frame of `borealis.v1.protobuf`. Throws BRL_ERR_PROTOCOL for anything else. */
export function decodeFrameProto(bytes: Uint8Array): StreamMessage {
  let o: {
    batch?: { events?: EventMsg[] };
    hello?: { epoch?: string; seq?: number; firstSeq?: number };
    resync?: { epoch?: string; seq?: number; requestedSeq?: number; reason?: string; snapshotJson?: string };
    close?: { code?: number; reason?: string; lastSeq?: number };
  };
  try {
    o = EventFrameType.toObject(EventFrameType.decode(bytes), TO_OBJECT);
  } catch (err) {
    throw malformed('not an EventFrame', err);
  }
  if (o.batch) return { type: 'events', events: (o.batch.events ?? []).map((m) => eventFromProto(m)) };
  if (o.hello) return { type: 'hello', epoch: o.hello.epoch ?? '', seq: o.hello.seq ?? 0, firstSeq: o.hello.firstSeq ?? 0 };
  if (o.resync) {
    let snapshot: StreamSnapshot;
    try {
      snapshot = JSON.parse(o.resync.snapshotJson ?? '') as StreamSnapshot;
    } catch (err) {
      throw malformed('resync snapshot_json', err);
    }
    return {
      type: 'resync',
      epoch: o.resync.epoch ?? '',
      seq: o.resync.seq ?? 0,
      requestedSeq: o.resync.requestedSeq ?? 0,
      reason: o.resync.reason ?? '',
      snapshot,
    };
  }
  if (o.close) return { type: 'close', code: o.close.code ?? 0, reason: o.close.reason ?? '', lastSeq: o.close.lastSeq ?? 0 };
  throw malformed('empty EventFrame');
}

/** A text frame of `borealis.v1.json`. Throws BRL_ERR_PROTOCOL for anything else. */
export function decodeFrameJson(text: string): StreamMessage {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw malformed('not JSON', err);
  }
  if (Array.isArray(v)) return { type: 'events', events: v as ClusterEvent[] };
  const t = (v as { type?: unknown } | null)?.type;
  if (t === 'hello' || t === 'resync' || t === 'close') return v as StreamMessage;
  throw malformed(`unknown message type ${JSON.stringify(t)}`);
}

/** Either encoding, by the frame kind (binary: protobuf, text: JSON). */
export function decodeFrame(data: Uint8Array | string): StreamMessage {
  return typeof data === 'string' ? decodeFrameJson(data) : decodeFrameProto(data);
}
