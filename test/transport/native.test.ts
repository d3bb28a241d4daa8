/**
 * Loading uWebSockets.js: $BOREALIS_NATIVE, a missing or broken package, and the rule that the package's JS
 * fallback (loaded by its main when the binary fails) never runs.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ErrorCodes } from '../../src/api/errors.js';
import { type HttpServerOptions, createHttpServer } from '../../src/transport/index.js';
import { NATIVE_ENV, binaryName, chooseTransport, isNative, loadNative, nativeMode } from '../../src/transport/native.js';

const dirs: string[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/**
 * A package directory shaped like uWebSockets.js whose main and JS fallback, when required, warn as the real
 * main does and count themselves in globalThis.__fakeUwsRequired; `binary` (if given) is the binary for this
 * platform.
 */
async function fakePackage(binary?: Buffer): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'borealis-uws-'));
  dirs.push(dir);
  await mkdir(join(dir, 'src'));
  await mkdir(join(dir, 'dist'));
  await mkdir(join(dir, 'binaries'));
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'uws-fake', version: '20.30.0-fake.1', main: 'src/uws.js' }));
  const js = (what: string): string =>
    `globalThis.__fakeUwsRequired = (globalThis.__fakeUwsRequired ?? 0) + 1;\nconsole.warn('${what}');\nmodule.exports = { App() {} };\n`;
  await writeFile(join(dir, 'src', 'uws.js'), `${js('falling back')}module.exports = require('../dist/index.js');\n`);
  await writeFile(join(dir, 'dist', 'index.js'), js('the JS fallback'));
  if (binary) await writeFile(join(dir, 'binaries', binaryName()), binary);
  return dir;
}

/** Every console/stderr write during `fn`: loading must print nothing (the package's main warns). */
function quietly<T>(fn: () => T): { result: T; printed: unknown[][] } {
  const printed: unknown[][] = [];
  for (const m of ['log', 'warn', 'error', 'info'] as const) vi.spyOn(console, m).mockImplementation((...a) => void printed.push(a));
  const write = vi.spyOn(process.stderr, 'write').mockImplementation((...a) => (printed.push(a), true));
  try {
    return { result: fn(), printed };
  } finally {
    write.mockRestore();
  }
}

/** Which server createHttpServer builds (closed again at once). */
async function transportOf(opts: HttpServerOptions, env: NodeJS.ProcessEnv): Promise<string> {
  const s = createHttpServer(opts, env);
  await s.close();
  return s.transport;
}

const cjs = createRequire(import.meta.url);
const fallbackLoaded = (dir: string): string[] =>
  Object.keys(cjs.cache).filter((k) => k.startsWith(dir + sep) && (k.includes(`${sep}dist${sep}`) || k.endsWith(`${sep}uws.js`)));

describe('$BOREALIS_NATIVE', () => {
  it('0 takes the native-free path without touching the package', async () => {
    const dir = await fakePackage(Buffer.from('not an ELF file'));
    const { result, printed } = quietly(() => loadNative({ [NATIVE_ENV]: '0' }, { packageDir: dir }));
    expect(result).toEqual({ uws: null, reason: 'native-free: BOREALIS_NATIVE=0', version: null, path: null });
    expect(printed).toEqual([]);
    expect(await transportOf({}, { [NATIVE_ENV]: '0' })).toBe('node');
    expect(chooseTransport('auto', { [NATIVE_ENV]: '0' }).description).toBe('transport: node:http (native-free: BOREALIS_NATIVE=0)');
    // Asking for uws while the environment forbids native code is a contradiction, not a silent fallback.
    expect(() => createHttpServer({ transport: 'uws' }, { [NATIVE_ENV]: '0' })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
  });

  it('1 with a package that cannot load is a clear error naming the cause; auto falls back quietly', async () => {
    const missing = await fakePackage();
    expect(() => loadNative({ [NATIVE_ENV]: '1' }, { packageDir: missing })).toThrow(
      expect.objectContaining({
        code: ErrorCodes.UNAVAILABLE,
        message: expect.stringMatching(new RegExp(`^BOREALIS_NATIVE=1 but uWebSockets\\.js did not load: no prebuilt binary for ${process.platform} ${process.arch} Node ABI ${process.versions.modules} \\(.*${binaryName().replace(/\./g, '\\.')} is missing\\)$`)),
      }),
    );
    const broken = await fakePackage(Buffer.from('not an ELF file'));
    expect(() => loadNative({ [NATIVE_ENV]: '1' }, { packageDir: broken })).toThrow(
      expect.objectContaining({ code: ErrorCodes.UNAVAILABLE, message: expect.stringContaining(join(broken, 'binaries', binaryName())) }),
    );
    expect(() => loadNative({ [NATIVE_ENV]: '1' }, { packageDir: null })).toThrow(/uWebSockets\.js is not installed/);

    const { result, printed } = quietly(() => loadNative({}, { packageDir: broken }));
    expect(result).toMatchObject({ uws: null, version: '20.30.0-fake.1', path: join(broken, 'binaries', binaryName()) });
    expect(printed).toEqual([]);
    // Neither the package's main nor its JS fallback was required.
    expect(fallbackLoaded(broken)).toEqual([]);
    expect((globalThis as { __fakeUwsRequired?: number }).__fakeUwsRequired).toBeUndefined();
  });

  it('refuses a value it does not know, naming the variable', () => {
    expect(nativeMode({})).toBe('auto');
    expect(nativeMode({ [NATIVE_ENV]: 'auto' })).toBe('auto');
    expect(() => nativeMode({ [NATIVE_ENV]: 'yes' })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT, message: expect.stringContaining(NATIVE_ENV) }));
  });
});

describe('the installed uWebSockets.js', () => {
  const installed = loadNative({});
  const skip = installed.uws === null ? `uWebSockets.js did not load: ${installed.reason}` : null;

  it.skipIf(skip !== null)(`loads the native binary itself, never the package's JS fallback${skip === null ? '' : ` (skipped: ${skip})`}`, async () => {
    const { result, printed } = quietly(() => loadNative({ [NATIVE_ENV]: '1' }));
    expect(result).toBe(installed); // one attempt per process
    expect(result.path!.endsWith(`${sep}binaries${sep}${binaryName()}`)).toBe(true);
    expect(cjs.cache[result.path!]?.exports).toBe(result.uws);
    expect(isNative(result.uws)).toBe(true);
    const pkg = result.path!.slice(0, -`${sep}binaries${sep}${binaryName()}`.length);
    expect(fallbackLoaded(pkg)).toEqual([]);
    expect(printed).toEqual([]);
    expect(await transportOf({}, {})).toBe('uws');
    expect(await transportOf({ transport: 'uws' }, { [NATIVE_ENV]: '1' })).toBe('uws');
    expect(await transportOf({ transport: 'node' }, { [NATIVE_ENV]: '1' })).toBe('node');
    expect(chooseTransport('auto', {}).description).toMatch(/^transport: uWebSockets\.js \d+\.\d+\.\d+ \(native\)$/);
  });

  it('tells the native module from a JS imitation of it', () => {
    const imitation = { App: function App() {}, getParts: () => undefined, us_listen_socket_close: () => undefined, us_socket_local_port: () => 0, LIBUS_LISTEN_EXCLUSIVE_PORT: 1, DISABLED: 0 };
    expect(isNative(imitation)).toBe(false);
    expect(isNative({ ...imitation, App: Math.max })).toBe(true); // a native function with the native-only exports
    expect(isNative({ App: Math.max })).toBe(false);
    expect(isNative(null)).toBe(false);
  });
});
