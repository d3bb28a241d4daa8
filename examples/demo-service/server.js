// The demo service `borealis up` runs: a tiny HTTP server on $PORT (no dependencies).
//   GET /        -> one line naming the task, where it listens, and its pid
//   GET /health  -> 200 "ok" (the job's health check)
import { createServer } from 'node:http';

const port = Number(process.env.PORT ?? process.env.PORT0 ?? 8000);
const host = process.env.HOST ?? '127.0.0.1';
const taskId = process.env.BOREALIS_TASK_ID ?? '(no task id)';

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method === 'GET' && path === '/health') {
    res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
  } else if (req.method === 'GET' && path === '/') {
    res.writeHead(200, { 'Content-Type': 'text/plain' }).end(`hello from ${taskId} at ${host}:${port} (pid ${process.pid})\n`);
  } else {
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
  }
});

// Bind the address the agent advertises (HOST), where the balancer and health checks reach it, and nothing
// wider: under `borealis up` that is 127.0.0.1, so a demo on a shared machine is not open to its network.
server.listen(port, host, () => console.log(`demo-service ${taskId} listening on ${host}:${port}`));

// The agent stops a task with SIGTERM, then SIGKILL after the grace period: finish in-flight requests first.
process.on('SIGTERM', () => server.close(() => process.exit(0)));
