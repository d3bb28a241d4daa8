/**
 * Loading uWebSockets.js' native binary, and choosing the transport from it.
 *
 * The package (an optional dependency, so it may be absent) has a main, src/uws.js, that requires
 * `binaries/uws_<platform>_<arch>_<abi>.node` and, when that fails, prints a warning and falls back to a slow
 * pure-JS imitation. That fallback must never run: the main is never required here; the binary for this
 * platform, arch and ABI is required directly, and checked to be native before it is used. Nothing is printed:
 * why the native path is (not) taken goes into one line the caller logs (`describe`).
 *
 * $BOREALIS_NATIVE: `0` forces the native-free path, `1` requires the native one (an error when it cannot
 * load), unset (or `auto`) takes it when it loads.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { BorealisError, ErrorCodes, InvalidArgumentError } from '../api/errors.js';
import type { TransportKind } from './types.js';
import type { UwsModule } from './uws-api.js';

export const NATIVE_ENV = 'BOREALIS_NATIVE';
/** The dependency's name in package.json (an alias of @trufflesuite/uws-js-unofficial). */
export const UWS_PACKAGE = 'uWebSockets.js';

export type NativeMode = 'auto' | 'required' | 'off';

export interface NativeLoad {
  /** The native module, or null when it is not used. */
  uws: UwsModule | null;
  /** Why not (or, when loaded, which file): for the transport log line. */
  reason: string;
  /** The package's version, when it is installed. */
  version: string | null;
  /** The `.node` file that was (or would have been) loaded. */
  path: string | null;
}

export interface NativeLocation {
  /** The package's directory; by default resolved from this module; null: not installed. */
  packageDir?: string | null;
}

/** $BOREALIS_NATIVE as a mode; anything but 0, 1, auto or empty is a mistake worth stopping for. */
export function nativeMode(env: NodeJS.ProcessEnv = process.env): NativeMode {
  const v = (env[NATIVE_ENV] ?? '').trim();
  if (v === '' || v === 'auto') return 'auto';
  if (v === '1') return 'required';
  if (v === '0') return 'off';
  throw new InvalidArgumentError(`${NATIVE_ENV} must be 0 (native-free), 1 (native required) or unset (auto), got ${JSON.stringify(v)}`, [
    { path: NATIVE_ENV, message: 'must be 0, 1 or unset' },
  ]);
}

/** The prebuilt binary's file name for this process (what the package's own main would require). */
export function binaryName(): string {
  return `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
}

const cjsRequire = createRequire(import.meta.url);
/** One attempt per package directory: a process loads the binary once, and reports the same outcome after. */
const attempts = new Map<string, NativeLoad>();
let defaultDir: string | null | undefined;

/**
 * uWebSockets.js' native module per $BOREALIS_NATIVE: `{uws: null, reason}` when off or when it cannot load
 * (auto); a BorealisError (BRL_ERR_UNAVAILABLE) when it is required and cannot load.
 */
export function loadNative(env: NodeJS.ProcessEnv = process.env, where: NativeLocation = {}): NativeLoad {
  const mode = nativeMode(env);
  if (mode === 'off') return { uws: null, reason: `native-free: ${NATIVE_ENV}=0`, version: null, path: null };
  const r = attempt(where.packageDir === undefined ? packageDir() : where.packageDir);
  if (r.uws === null && mode === 'required') {
    throw new BorealisError(ErrorCodes.UNAVAILABLE, `${NATIVE_ENV}=1 but ${UWS_PACKAGE} did not load: ${r.reason}`);
  }
  return r;
}

export interface TransportChoice {
  kind: TransportKind;
  /** Set when kind is 'uws'. */
  uws: UwsModule | null;
  /** The "which transport" log line, e.g. `transport: uWebSockets.js 20.30.0 (native)`. */
  description: string;
  /** Why node:http (`native-free: asked for`, `uWebSockets.js did not load: ...`); the release when kind is 'uws'. */
  detail: string;
}

/**
 * The server createHttpServer builds: `node` as asked; `uws` only natively (an error when it cannot load, or
 * when $BOREALIS_NATIVE=0 forbids it); `auto` per loadNative.
 */
export function chooseTransport(requested: 'auto' | TransportKind = 'auto', env: NodeJS.ProcessEnv = process.env): TransportChoice {
  if (requested === 'node') {
    const detail = 'native-free: asked for';
    return { kind: 'node', uws: null, description: `transport: ${transportName('node')} (${detail})`, detail };
  }
  if (requested === 'uws' && nativeMode(env) === 'off') {
    throw new InvalidArgumentError(`transport uws needs native code, which ${NATIVE_ENV}=0 forbids`);
  }
  const load = loadNative(requested === 'uws' ? { ...env, [NATIVE_ENV]: '1' } : env);
  if (load.uws !== null) {
    const detail = releaseOf(load.version);
    return { kind: 'uws', uws: load.uws, description: `transport: ${transportName('uws')} ${detail} (native)`, detail };
  }
  const why = nativeMode(env) === 'off' ? load.reason : `${UWS_PACKAGE} did not load: ${load.reason}`;
  return { kind: 'node', uws: null, description: `transport: ${transportName('node')} (${why})`, detail: why };
}

/** What a transport is called in logs. */
export function transportName(kind: TransportKind): string {
  return kind === 'uws' ? 'uWebSockets.js' : 'node:http';
}

/** The package's directory, or null when the optional dependency is not installed. */
function packageDir(): string | null {
  if (defaultDir === undefined) {
    try {
      defaultDir = dirname(cjsRequire.resolve(`${UWS_PACKAGE}/package.json`));
    } catch {
      defaultDir = null;
    }
  }
  return defaultDir;
}

function attempt(dir: string | null): NativeLoad {
  const key = dir ?? '';
  let r = attempts.get(key);
  if (r === undefined) {
    r = tryLoad(dir);
    attempts.set(key, r);
  }
  return r;
}

function tryLoad(dir: string | null): NativeLoad {
  if (dir === null) return { uws: null, reason: `${UWS_PACKAGE} is not installed (an optional dependency)`, version: null, path: null };
  let version: string | null = null;
  try {
    version = String((JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: unknown }).version ?? '') || null;
  } catch {
    // A package without a readable package.json can still have its binary.
  }
  const path = join(dir, 'binaries', binaryName());
  if (!existsSync(path)) {
    const reason = `no prebuilt binary for ${process.platform} ${process.arch} Node ABI ${process.versions.modules} (${path} is missing)`;
    return { uws: null, reason, version, path };
  }
  let m: unknown;
  try {
    m = cjsRequire(path);
  } catch (err) {
    return { uws: null, reason: `${path}: ${firstLine(err)}`, version, path };
  }
  if (!isNative(m)) return { uws: null, reason: `${path} is not uWebSockets.js' native module`, version, path };
  return { uws: m, reason: `native binary ${path}`, version, path };
}

/**
 * The JS fallback exports an App too, so the check is for what only the addon has: App implemented natively,
 * and the native-only exports uws-server.ts relies on (the fallback has neither the listen options nor getParts).
 */
export function isNative(m: unknown): m is UwsModule {
  if (typeof m !== 'object' || m === null) return false;
  const u = m as Record<string, unknown>;
  return (
    typeof u.App === 'function' &&
    /\{\s*\[native code\]\s*\}\s*$/.test(Function.prototype.toString.call(u.App)) &&
    typeof u.getParts === 'function' &&
    typeof u.us_listen_socket_close === 'function' &&
    typeof u.us_socket_local_port === 'function' &&
    typeof u.LIBUS_LISTEN_EXCLUSIVE_PORT === 'number' &&
    typeof u.DISABLED === 'number'
  );
}

/** `20.30.0-unofficial.0` -> `20.30.0`: the upstream release the fork tracks. */
function releaseOf(version: string | null): string {
  return version === null ? '(unknown version)' : version.split('-')[0];
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}
