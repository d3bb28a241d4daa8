/**
 * Entry point of `borealis-loadgen` (bin/borealis-loadgen.js imports it from dist/; `npm run loadgen -- …` and
 * `node dist/loadgen/main.js …` run it directly).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runLoadgenCli } from './cli.js';

export async function main(argv: readonly string[] = process.argv): Promise<never> {
  const code = await runLoadgenCli(argv);
  process.exit(code);
}

function isEntry(): boolean {
  if (process.argv[1] === undefined) return false;
  try {
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) void main();
