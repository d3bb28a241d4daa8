/** HAProxy as the reference proxy: one thread, leastconn, upstream connections always reused. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HOST } from './net.js';
import type { Upstream } from './nginx.js';

/**
 * nbthread 1: one balancer thread, the same budget Borealis gets. maxconn stays small because
 * HAProxy asks for about two descriptors per connection at start-up and refuses to run when the
 * hard limit is lower; the benchmark needs 64 client connections and as many upstream.
 * `http-reuse always` shares idle upstream connections between clients, HAProxy's keep-alive mode.
 * The frontend rewrites headers as Borealis does by default (headers.ts), so both do the same work: X-Forwarded-For
 * appended (`option forwardfor`), X-Forwarded-Proto and X-Forwarded-Host set, Via added both ways.
 */
export function haproxyConfig(port: number, upstreams: readonly Upstream[]): string {
  const servers = upstreams.map((u, i) => `  server b${i + 1} ${HOST}:${u.port} weight ${u.weight}`).join('\n');
  return `global
  nbthread 1
  maxconn 1024
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend fe
  bind ${HOST}:${port}
  option forwardfor
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Host %[req.hdr(host)] if { req.hdr(host) -m found }
  http-request add-header Via "1.1 haproxy"
  http-response add-header Via "1.1 haproxy"
  default_backend backends
backend backends
  balance leastconn
${servers}
`;
}

/** Writes the config under `root`; returns HAProxy's arguments (-db: stay in the foreground, as our child). */
export function writeHaproxy(root: string, name: string, config: string): string[] {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, config);
  return ['-db', '-f', file];
}
