import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { BorealisError, ErrorCodes } from '../api/errors.js';

/**
 * The wire schema, loaded from borealis.proto (shipped next to this file in src/ and copied to
 * dist/ by the build). Encoding and decoding go through protobufjs' reflection types, which
 * generate their codecs on first use.
 */
function loadRoot(): protobuf.Root {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const candidates = [`${here}borealis.proto`, `${here}../../../src/proto/borealis.proto`];
  for (const file of candidates) {
    try {
      const text = readFileSync(file, 'utf8');
      return protobuf.parse(text, { keepCase: false }).root;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  throw new Error(`borealis.proto not found next to ${here}`);
}

export const root = loadRoot();
export const AgentMessageType = root.lookupType('borealis.v1.AgentMessage');
export const MasterMessageType = root.lookupType('borealis.v1.MasterMessage');
export const TaskStateEnum = root.lookupEnum('borealis.v1.TaskState');

export const AGENT_SUBPROTOCOL = 'borealis.agent.v1';

/** Task states as the wire names them, and as the master's JSON API spells them. */
export const TASK_STATES = ['pending', 'staging', 'starting', 'running', 'finished', 'failed', 'killed', 'lost'] as const;
export type TaskStateName = (typeof TASK_STATES)[number];

export function taskStateToWire(s: TaskStateName): number {
  return TASK_STATES.indexOf(s) + 1;
}

export function taskStateFromWire(n: number): TaskStateName | undefined {
  return TASK_STATES[n - 1];
}

// Plain-object shapes of the messages (protobufjs toObject with longs as numbers, enums as numbers).
export interface PortRangeMsg { begin: number; end: number }
export interface ResourcesMsg { cpusMilli?: number; memMib?: number; diskMib?: number; gpus?: number; ports?: PortRangeMsg[] }
export interface CommandMsg { shell?: string; argv?: { args: string[] } }
export interface HealthCheckMsg { path?: string; portIndex?: number; intervalMs?: number; timeoutMs?: number; consecutiveFailures?: number; gracePeriodMs?: number }
export interface TaskInfoMsg {
  taskId: string;
  job: string;
  instance?: number;
  command?: CommandMsg;
  env?: Record<string, string>;
  resources?: ResourcesMsg;
  ports?: number[];
  healthCheck?: HealthCheckMsg;
  killGraceMs?: number;
}
export interface TaskStatusMsg {
  taskId: string;
  state: number;
  reason?: string;
  message?: string;
  exitCode?: number;
  timestampMs?: number;
  uuid?: string;
  healthy?: boolean;
}
export interface TaskUsageMsg { taskId: string; rssBytes?: number; cpuSeconds?: number }
export interface RegisterMsg {
  agentId: string;
  hostname?: string;
  advertiseIp?: string;
  resources?: ResourcesMsg;
  attributes?: Record<string, string>;
  isolation?: string;
  tasks?: TaskStatusMsg[];
  version?: string;
}
export interface AgentMessage {
  register?: RegisterMsg;
  heartbeat?: { seq?: number; usage?: TaskUsageMsg[] };
  status?: { status: TaskStatusMsg };
  leaving?: { reason?: string };
}
export interface MasterMessage {
  registered?: { agentId: string; heartbeatIntervalMs?: number; killTasks?: string[] };
  launch?: { task: TaskInfoMsg };
  kill?: { taskId: string; graceMs?: number };
  ack?: { taskId: string; uuid: string };
  error?: { code: string; message: string };
}

/** How decoded messages become plain objects (the *Msg shapes): longs as numbers, enums as numbers, no defaults. */
export const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: Number, defaults: false, arrays: true, objects: true, oneofs: false };

function decode<T>(type: protobuf.Type, bytes: Uint8Array): T {
  let msg: protobuf.Message;
  try {
    msg = type.decode(bytes);
  } catch (err) {
    throw new BorealisError(ErrorCodes.INVALID_ARGUMENT, `malformed ${type.name}: ${(err as Error).message}`);
  }
  return type.toObject(msg, TO_OBJECT) as T;
}

function encode(type: protobuf.Type, value: object): Uint8Array {
  const problem = type.verify(value);
  if (problem) throw new BorealisError(ErrorCodes.INVALID_ARGUMENT, `invalid ${type.name}: ${problem}`);
  return type.encode(type.fromObject(value)).finish();
}

export function encodeAgentMessage(m: AgentMessage): Uint8Array {
  return encode(AgentMessageType, m);
}

export function decodeAgentMessage(bytes: Uint8Array): AgentMessage {
  return decode<AgentMessage>(AgentMessageType, bytes);
}

export function encodeMasterMessage(m: MasterMessage): Uint8Array {
  return encode(MasterMessageType, m);
}

export function decodeMasterMessage(bytes: Uint8Array): MasterMessage {
  return decode<MasterMessage>(MasterMessageType, bytes);
}
