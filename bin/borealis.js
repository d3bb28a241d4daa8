#!/usr/bin/env node
// The `borealis` command: runs the compiled CLI (dist/), built by `npm run build`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write(
    `borealis: the CLI is not built (${fileURLToPath(entry)} is missing).\n` +
      `Run \`npm run build\` in ${fileURLToPath(new URL('..', import.meta.url))} first.\n`,
  );
  process.exit(2);
}
const { main } = await import(entry.href);
await main(process.argv);
