/**
 * nginx, both as the benchmark's backends (a small fixed response) and as a peer proxy
 * (`least_conn`, upstream keep-alive). Configs are written to the run's temp dir and every path
 * nginx would otherwise take from its compiled-in prefix (pid, logs, temp files) points there, so
 * it runs without root and leaves nothing behind; `daemon off` keeps the master as our child.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HOST } from './net.js';

/** Body every backend answers with: small and fixed, so the proxy's work dominates. */
const BACKEND_BODY = 'hello from a backend\n';

export interface Upstream {
  port: number;
  weight: number;
}

/**
 * worker_processes 1: one core of work per nginx, as the issue measures. keepalive_requests is
 * raised from its default of 1000 so that neither client nor upstream connections are recycled
 * mid-run (HAProxy and the Node proxies never recycle them either).
 */
function main(dir: string, http: string): string {
  return `worker_processes 1;
daemon off;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'client_body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  keepalive_requests 1000000;
  keepalive_timeout 120s;
${http}
}
`;
}

export function backendConfig(dir: string, port: number): string {
  return main(
    dir,
    `  server {
    listen ${HOST}:${port};
    location / { default_type text/plain; return 200 ${JSON.stringify(BACKEND_BODY)}; }
  }`,
  );
}

/**
 * `proxy_http_version 1.1` and an empty Connection header are what make upstream keep-alive work. The forwarding
 * headers are Borealis' defaults (headers.ts), so both do the same work: X-Forwarded-For appended, X-Forwarded-Proto
 * and X-Forwarded-Host set, Via added both ways (nginx has no Via of its own).
 */
export function proxyConfig(dir: string, port: number, upstreams: readonly Upstream[]): string {
  const servers = upstreams.map((u) => `    server ${HOST}:${u.port} weight=${u.weight};`).join('\n');
  return main(
    dir,
    `  upstream backends {
    least_conn;
${servers}
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen ${HOST}:${port};
    location / {
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header Via "1.1 nginx";
      add_header Via "1.1 nginx";
    }
  }`,
  );
}

/** Writes `conf` into its own directory under `root`; returns nginx's arguments for it. */
export function writeNginx(root: string, name: string, conf: (dir: string) => string): string[] {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, conf(dir));
  // -e: the error log before the config is read would otherwise go to /var/log/nginx (root only).
  return ['-p', dir, '-e', join(dir, 'error.log'), '-c', file];
}
