/**
 * Bodies stream both ways with backpressure: a 50 MiB download to a client that stops reading, and a 50 MiB upload
 * to an endpoint that stops reading, each stall with far less than the body in flight (so nothing buffers a whole
 * body: memory is bounded by socket and stream buffers), then complete byte for byte once the reader resumes.
 */
import type { IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { FRONT_ENDS, balancerFixture, waitFor } from './helpers.js';

const SIZE = 50 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 0x61);
/** Loopback socket buffers (a few MiB per direction per connection, two connections) and stream buffers fit well under this. */
const MAX_IN_FLIGHT = 24 * 1024 * 1024;

/** Resolves once `value()` has not changed across two polls `ms` apart (the pipeline is stalled). */
async function stalled(value: () => number, what: string, ms = 150): Promise<number> {
  let last = -1;
  return waitFor(
    async () => {
      const v = value();
      if (v === last && v > 0) return v;
      last = v;
      await new Promise((r) => setTimeout(r, ms));
      return false;
    },
    what,
  );
}

describe.each(FRONT_ENDS)('streaming through the %s front end', (front) => {
  const fx = balancerFixture();

  it('streams a 50 MiB download to a slow reader without buffering it', async () => {
    let written = 0;
    const backend = await fx.backend('big', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(SIZE) });
      const pump = (): void => {
        while (written < SIZE) {
          written += CHUNK.length;
          if (!res.write(CHUNK)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
    const bal = await fx.balancer(front, { feed: { static: [{ id: 'b', host: '127.0.0.1', port: backend.port, weight: 1 }] } });
    const socket = connect(bal.address!.port, '127.0.0.1');
    fx.onCleanup(() => socket.destroy());
    socket.pause();
    socket.write('GET /big HTTP/1.1\r\nHost: t\r\n\r\n');
    const inFlight = await stalled(() => written, 'the download to stall');
    expect(inFlight).toBeLessThan(MAX_IN_FLIGHT);

    let received = 0;
    let head = '';
    const done = new Promise<void>((resolve) => {
      socket.on('data', (c: Buffer) => {
        if (head === '' || !head.includes('\r\n\r\n')) {
          head += c.toString('latin1');
          const end = head.indexOf('\r\n\r\n');
          if (end < 0) return;
          received += Buffer.byteLength(head, 'latin1') - end - 4;
          head = head.slice(0, end + 4);
        } else {
          received += c.length;
        }
        if (received >= SIZE) resolve();
      });
    });
    socket.resume();
    await done;
    expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(head.toLowerCase()).toContain(`content-length: ${SIZE}`);
    expect(received).toBe(SIZE);
  });

  it('streams a 50 MiB upload to a slow endpoint without buffering it', async () => {
    let release: (() => void) | null = null;
    const backend = await fx.backend('sink', (req: IncomingMessage, res) => {
      req.pause();
      release = () => {
        let n = 0;
        req.on('data', (c: Buffer) => (n += c.length));
        req.on('end', () => res.end(`got ${n}\n`));
        req.resume();
      };
    });
    const bal = await fx.balancer(front, { feed: { static: [{ id: 'b', host: '127.0.0.1', port: backend.port, weight: 1 }] } });
    const socket = connect(bal.address!.port, '127.0.0.1');
    fx.onCleanup(() => socket.destroy());
    let reply = '';
    socket.on('data', (c: Buffer) => (reply += c.toString('latin1')));
    socket.write(`POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: ${SIZE}\r\n\r\n`);
    let sent = 0;
    let finished = false;
    const pump = (): void => {
      while (sent < SIZE) {
        sent += CHUNK.length;
        if (!socket.write(CHUNK)) {
          socket.once('drain', pump);
          return;
        }
      }
      finished = true;
    };
    pump();
    const inFlight = await stalled(() => sent, 'the upload to stall');
    expect(finished).toBe(false);
    expect(inFlight).toBeLessThan(MAX_IN_FLIGHT);
    expect(release).not.toBeNull();
    release!();
    await waitFor(() => reply.includes(`got ${SIZE}\n`), 'the endpoint to receive the whole upload', 30_000);
    expect(reply).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(backend.received[0].bodyBytes).toBe(SIZE);
  });
});
