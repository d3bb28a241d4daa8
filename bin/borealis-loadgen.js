#!/usr/bin/env node
// The `borealis-loadgen` command: runs the compiled load generator (dist/), built by `npm run build`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/loadgen/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write(
    `borealis-loadgen: the load generator is not built (${fileURLToPath(entry)} is missing).\n` +
      `Run \`npm run build\` in ${fileURLToPath(new URL('..', import.meta.url))} first.\n`,
  );
  process.exit(2);
}
const { main } = await import(entry.href);
await main(process.argv);
