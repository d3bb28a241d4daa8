/** One HTTP health probe: a GET that passes on 2xx/3xx within the timeout. */
import http from 'node:http';

export interface ProbeTarget {
  host: string;
  port: number;
  path: string;
  timeoutMs: number;
}

export interface ProbeResult {
  ok: boolean;
  /** HTTP status, when a response arrived. */
  status?: number;
  /** Why it failed, when it did: a network error, a timeout, or the status. */
  error?: string;
}

/**
 * Never rejects. `agent: false` plus `Connection: close` gives every probe its own socket, closed after the
 * response: a pooled keep-alive socket would outlive `stop()` and, worse, keep probing a server through a
 * connection it may have stopped accepting new ones on. The timeout covers connect, headers and body, so a server
 * that trickles its body cannot hold a probe open.
 */
export function probeHttp(target: ProbeTarget, signal?: AbortSignal): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (result: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy(); // releases the socket whatever state the exchange is in
      resolve(result);
    };
    const req = http.request({
      host: target.host,
      port: target.port,
      path: target.path,
      method: 'GET',
      agent: false,
      headers: { connection: 'close', 'user-agent': 'borealis-health/1' },
      ...(signal === undefined ? {} : { signal }),
    });
    const timer = setTimeout(() => done({ ok: false, error: `timed out after ${target.timeoutMs} ms` }), target.timeoutMs);
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      const ok = status >= 200 && status < 400;
      res.on('error', (err) => done({ ok: false, status, error: err.message }));
      res.on('end', () => done(ok ? { ok, status } : { ok, status, error: `HTTP ${status}` }));
      res.resume(); // the body is irrelevant, but must be read for 'end' to come
    });
    req.on('error', (err) => done({ ok: false, error: signal?.aborted ? 'aborted' : err.message }));
    req.end();
  });
}
