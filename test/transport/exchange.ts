/**
 * One raw exchange on a fresh TCP connection, for requests fetch/undici cannot send (HTTP/1.0, no Host, garbage):
 * everything the server sent, and whether it closed the connection within `boundMs`. The bound only turns a hang
 * into a failure; a server that answers resolves as soon as it closes.
 */
import { connect } from 'node:net';

export interface Exchange {
  /** The bytes received, as latin1. */
  text: string;
  /** The server closed (or reset) the connection before the bound. */
  closed: boolean;
}

export function exchange(port: number, bytes: string, boundMs: number): Promise<Exchange> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let settled = false;
    const settle = (closed: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(bound);
      s.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    };
    const bound = setTimeout(() => settle(false), boundMs);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('close', () => settle(true));
    // A reset is a close too (the 'close' event follows; the error must not go unhandled).
    s.on('error', () => undefined);
    s.write(bytes, 'latin1');
  });
}

/** Splits a run of responses on one connection into [head, body] pairs, by Content-Length (the rest: one body). */
export function splitResponses(text: string): { head: string; body: string }[] {
  const out: { head: string; body: string }[] = [];
  let at = 0;
  while (at < text.length) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const head = text.slice(at, end);
    const m = /\r\ncontent-length: *(\d+)/i.exec(head);
    const bodyEnd = m === null ? text.length : end + 4 + Number(m[1]);
    out.push({ head, body: text.slice(end + 4, bodyEnd) });
    at = bodyEnd;
  }
  return out;
}
