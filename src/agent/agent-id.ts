/**
 * The agent's identity. The master recognises a re-registering agent (and keeps its tasks) by this id, so it must
 * survive restarts of the agent process: it is derived from the hostname and the work directory (two agents on
 * one machine differ by their work directories) and written to `<workDir>/agent-id` the first time. From then on
 * the file wins, so a host renamed by DHCP keeps its id, as Mesos keeps its agent id in the meta directory.
 */
import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError } from '../api/errors.js';
import { checkAgentId } from './isolation/limits.js';

export const AGENT_ID_FILE = 'agent-id';

/** Readable prefix: the hostname cut to the characters an id may hold. */
const HOST_PREFIX_MAX = 40;

export function deriveAgentId(hostname: string, workDir: string): string {
  const digest = createHash('sha256').update(`${hostname}\0${path.resolve(workDir)}`).digest('hex').slice(0, 12);
  const prefix = hostname
    .replace(/[^A-Za-z0-9_.-]+/g, '-')
    .replace(/^[.-]+/, '')
    .slice(0, HOST_PREFIX_MAX);
  return prefix === '' ? `agent-${digest}` : `${prefix}-${digest}`;
}

/** Reads `<workDir>/agent-id`, or derives one and persists it. `workDir` must exist. */
export async function loadOrCreateAgentId(workDir: string, hostname: string): Promise<string> {
  const file = path.join(workDir, AGENT_ID_FILE);
  let text: string | undefined;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== undefined) {
    const id = text.trim();
    try {
      return checkAgentId(id);
    } catch {
      throw new InvalidArgumentError(`${file} holds ${JSON.stringify(id)}, which is not a valid agent id; fix or remove it`, [
        { path: 'agentId', message: `invalid id in ${file}` },
      ]);
    }
  }
  const id = checkAgentId(deriveAgentId(hostname, workDir));
  // Written aside and renamed, so a crash mid-write never leaves a truncated id that would change the identity.
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${id}\n`);
  await rename(tmp, file);
  return id;
}
