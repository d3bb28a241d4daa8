/** What `up` quotes from an agent's log when the agent exits unexpectedly: its last non-empty line. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lastLine } from '../../src/cli/up.js';

let dir = '';
afterAll(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

describe('lastLine', () => {
  it('gives the last non-empty line, reads only the tail of a long log, and is empty for a missing or blank file', async () => {
    dir = await mkdtemp(join(tmpdir(), 'borealis-lastline-'));
    const log = join(dir, 'agent.log');
    await writeFile(log, `${'earlier line\n'.repeat(10_000)}borealis: BRL_ERR_WORK_DIR_LOCKED: in use by pid 42\n\n  \n`);
    expect(lastLine(log)).toBe('borealis: BRL_ERR_WORK_DIR_LOCKED: in use by pid 42');
    await writeFile(log, '\n\n');
    expect(lastLine(log)).toBe('');
    expect(lastLine(join(dir, 'missing.log'))).toBe('');
  });
});
