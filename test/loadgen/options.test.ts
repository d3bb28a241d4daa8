/** Options are checked before anything is sent: loopback only, one problem per bad value, durations as wrk writes them. */
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { isLoopbackHost, parseDuration, runLoad } from '../../loadgen/index.js';
import { ErrorCodes } from '../../src/api/errors.js';

async function refusal(options: Parameters<typeof runLoad>[0]): Promise<{ code: string; problems: { path: string; message: string }[] }> {
  try {
    await runLoad(options);
  } catch (err) {
    return err as { code: string; problems: { path: string; message: string }[] };
  }
  throw new Error('runLoad accepted the options');
}

describe('loadgen options', () => {
  it('refuses a target off this machine\'s loopback unless allowRemote, before connecting anywhere', async () => {
    for (const url of ['http://10.1.2.3/', 'http://192.168.0.1:8080/x', 'http://example.com/', 'http://[2001:db8::1]/', 'http://127.0.0.1.nip.io/']) {
      const err = await refusal({ url, rate: 10, durationMs: 100 });
      expect(err.code).toBe(ErrorCodes.INVALID_ARGUMENT);
      expect(err.problems).toEqual([{ path: 'url', message: expect.stringContaining('not a loopback address') }]);
    }
    expect(isLoopbackHost('127.0.0.1')).toBe(true);
    expect(isLoopbackHost('127.3.2.1')).toBe(true);
    expect(isLoopbackHost('localhost')).toBe(true);
    expect(isLoopbackHost('[::1]')).toBe(true);
    expect(isLoopbackHost('128.0.0.1')).toBe(false);
    expect(isLoopbackHost('localhost.example.com')).toBe(false);
    // The URL parser normalises before the check: 127.1 is 127.0.0.1.
    expect(isLoopbackHost(new URL('http://127.1/').hostname)).toBe(true);
  });

  it('with allowRemote, a non-loopback host passes the check (validated here, never sent: an invalid option stops the run)', async () => {
    const err = await refusal({ url: 'http://10.1.2.3/', allowRemote: true, rate: -1 });
    expect(err.problems.map((p) => p.path)).toEqual(['rate']);
  });

  it('names every bad option at once', async () => {
    const err = await refusal({
      url: 'https://127.0.0.1/',
      mode: 'open',
      durationMs: 0,
      warmupMs: -1,
      connections: 1.5,
      pipelining: 0,
      maxInFlight: 0,
      timeoutMs: 120_000,
      method: 'GE T',
      headers: { connection: 'close', 'bad name': 'x', 'x-ok': 'a\r\nb' },
    });
    expect(err.code).toBe(ErrorCodes.INVALID_ARGUMENT);
    expect(err.problems.map((p) => p.path).sort()).toEqual(
      ['url', 'rate', 'durationMs', 'warmupMs', 'connections', 'pipelining', 'maxInFlight', 'timeoutMs', 'method', 'headers', 'headers', 'headers'].sort(),
    );
  });

  it('keeps rate and maxInFlight to the open loop', async () => {
    expect((await refusal({ url: 'http://127.0.0.1:1/', mode: 'closed', rate: 5 })).problems.map((p) => p.path)).toEqual(['rate']);
    expect((await refusal({ url: 'http://127.0.0.1:1/', maxInFlight: 5 })).problems.map((p) => p.path)).toEqual(['maxInFlight']);
  });

  it('sends nothing when refusing', async () => {
    let connections = 0;
    const server = createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (server.address() as { port: number }).port;
      await refusal({ url: `http://127.0.0.1:${port}/`, rate: 100, durationMs: 200, connections: 0 });
      expect(connections).toBe(0);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('parses durations as wrk writes them', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('10s')).toBe(10_000);
    expect(parseDuration('1.5s')).toBe(1_500);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('3')).toBe(3_000);
    expect(parseDuration('10x')).toBeUndefined();
    expect(parseDuration('-1s')).toBeUndefined();
    expect(parseDuration('')).toBeUndefined();
  });
});
