/**
 * Which front end the balancer runs on: uWebSockets.js when its native binary loads (src/transport/native.ts
 * loads the binary itself, never the package's slow JS fallback), node:http otherwise; $BOREALIS_NATIVE=0 forces
 * node:http and =1 makes a missing binary an error. The choice comes with the reason, for the one log line that
 * says which front end runs and why.
 */
import { chooseTransport } from '../transport/native.js';
import type { FrontEnd } from './downstream.js';
import { NodeFront, type NodeFrontOptions } from './front-node.js';
import { UwsFront, type UwsFrontOptions } from './front-uws.js';
import type { Proxy } from './proxy.js';
import type { UwsSharedModule } from './uws-types.js';

/** Builds a front end for a proxy. */
export type FrontEndFactory = (proxy: Proxy, opts: NodeFrontOptions) => FrontEnd;

export interface FrontEndChoice {
  kind: 'uws' | 'node';
  factory: FrontEndFactory;
  /** Why this one, e.g. `its native binary loaded (20.30.0)` or `BOREALIS_NATIVE=0`. */
  why: string;
}

export const nodeFrontEnd: FrontEndFactory = (proxy, opts) => new NodeFront(proxy, opts);

/** The uWebSockets.js front end over a loaded native module (node:http's timeout options do not apply to it). */
export function uwsFrontEnd(uws: UwsSharedModule, opts: UwsFrontOptions = {}): FrontEndFactory {
  return (proxy) => new UwsFront(uws, proxy, opts);
}

/**
 * `auto`: uWebSockets.js when it loads, else node:http; `uws` insists on the native one (an error when it cannot
 * load, or when $BOREALIS_NATIVE=0 forbids it); `node` is node:http.
 */
export function chooseFrontEnd(requested: 'auto' | 'uws' | 'node' = 'auto', env: NodeJS.ProcessEnv = process.env, opts: UwsFrontOptions = {}): FrontEndChoice {
  const t = chooseTransport(requested, env);
  if (t.kind === 'uws' && t.uws !== null) {
    const factory = uwsFrontEnd(t.uws as UwsSharedModule, opts);
    return { kind: 'uws', factory, why: `its native binary loaded${t.detail === '' ? '' : ` (${t.detail})`}` };
  }
  return { kind: 'node', factory: nodeFrontEnd, why: t.detail.replace(/^native-free: /, '') };
}
