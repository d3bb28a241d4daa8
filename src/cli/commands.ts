/** The client commands: each one request to the master, printed as a table or, with --json, as the API's JSON. */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import type { AgentView, ClusterView, JobView, TaskView } from '../master/types.js';
import { ApiClient, resolveMaster } from './client.js';
import { CliError, ExitCode, usage } from './exit.js';
import { cores, counts, mib, table } from './table.js';

export interface ClientFlags {
  master?: string;
  json?: boolean;
}

type Out = (text: string) => void;

function client(flags: ClientFlags): ApiClient {
  return new ApiClient(resolveMaster(flags.master));
}

function print(out: Out, flags: ClientFlags, json: unknown, human: () => string): void {
  out(flags.json ? JSON.stringify(json, null, 2) : human());
}

const enc = encodeURIComponent;

export async function jobsCommand(flags: ClientFlags, out: Out): Promise<void> {
  const { jobs } = await client(flags).get<{ jobs: JobView[] }>('/v1/jobs');
  print(out, flags, jobs, () =>
    jobs.length === 0
      ? 'no jobs'
      : table(
          ['NAME', 'TYPE', 'STATE', 'INSTANCES', 'TASKS'],
          // A crash loop shows in TASKS: "running=1 failed=1 backing-off=1".
          jobs.map((j) => [j.name, j.spec.type, j.state, j.spec.instances, `${counts(j.tasks)}${j.backingOff ? ` backing-off=${j.backingOff.length}` : ''}`]),
        ),
  );
}

export async function tasksCommand(job: string | undefined, flags: ClientFlags, out: Out): Promise<void> {
  const { tasks } = await client(flags).get<{ tasks: TaskView[] }>(`/v1/tasks${job ? `?job=${enc(job)}` : ''}`);
  print(out, flags, tasks, () =>
    tasks.length === 0
      ? 'no tasks'
      : table(
          ['ID', 'STATE', 'AGENT', 'ENDPOINT', 'REASON'],
          tasks.map((t) => [t.id, t.state, t.agentId, t.endpoint, t.reason]),
        ),
  );
}

export async function agentsCommand(flags: ClientFlags, out: Out): Promise<void> {
  const { agents } = await client(flags).get<{ agents: AgentView[] }>('/v1/agents');
  print(out, flags, agents, () =>
    agents.length === 0
      ? 'no agents'
      : table(
          ['ID', 'STATE', 'ADDRESS', 'CPUS', 'MEM', 'TASKS', 'ATTRIBUTES'],
          agents.map((a) => [
            a.id,
            a.state,
            a.address,
            `${cores(a.used.cpus)}/${cores(a.resources.cpus)}`,
            `${mib(a.used.mem)}/${mib(a.resources.mem)}`,
            a.tasks,
            Object.entries(a.attributes)
              .map(([k, v]) => `${k}=${v}`)
              .join(','),
          ]),
        ),
  );
}

export async function statusCommand(flags: ClientFlags, out: Out): Promise<void> {
  const api = client(flags);
  const c = await api.get<ClusterView>('/v1/cluster');
  print(out, flags, c, () =>
    [
      `master   ${api.base}`,
      `agents   ${c.agents.total} (up ${c.agents.up}, draining ${c.agents.draining}, lost ${c.agents.lost})`,
      `jobs     ${c.jobs}`,
      `tasks    ${counts(c.tasks)}`,
      '',
      table(
        ['RESOURCE', 'TOTAL', 'USED', 'FREE'],
        [
          ['cpus', cores(c.total.cpus), cores(c.used.cpus), cores(c.free.cpus)],
          ['mem', mib(c.total.mem), mib(c.used.mem), mib(c.free.mem)],
          ['disk', mib(c.total.disk), mib(c.used.disk), mib(c.free.disk)],
          ['gpus', c.total.gpus, c.used.gpus, c.free.gpus],
        ],
      ),
    ].join('\n'),
  );
}

/** The file goes to the master as it is (JSON or YAML by extension): the master parses and validates it once. */
export async function runCommand(file: string, flags: ClientFlags, out: Out): Promise<void> {
  const ext = extname(file).toLowerCase();
  const contentType = ext === '.json' ? 'application/json' : ext === '.yaml' || ext === '.yml' ? 'application/yaml' : undefined;
  if (contentType === undefined) throw usage(`${file}: a job file ends in .json, .yaml or .yml`);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw usage(`cannot read ${file}: ${(err as Error).message}`);
  }
  const job = await client(flags).call<JobView>('POST', '/v1/jobs', { text, contentType });
  print(out, flags, job, () => `submitted ${job.spec.type} job ${job.name} (${job.spec.instances} instance${job.spec.instances === 1 ? '' : 's'})`);
}

export async function scaleCommand(name: string, n: string, flags: ClientFlags, out: Out): Promise<void> {
  if (!/^\d+$/.test(n)) throw usage(`instances must be a whole number >= 0, got ${JSON.stringify(n)}`);
  const job = await client(flags).call<JobView>('PATCH', `/v1/jobs/${enc(name)}`, {
    text: JSON.stringify({ instances: Number(n) }),
    contentType: 'application/json',
  });
  print(out, flags, job, () => `scaled ${job.name} to ${job.spec.instances} instance${job.spec.instances === 1 ? '' : 's'}`);
}

export async function killCommand(name: string, flags: ClientFlags, out: Out): Promise<void> {
  const job = await client(flags).call<JobView>('DELETE', `/v1/jobs/${enc(name)}`);
  print(out, flags, job, () => `killed ${job.name} (${job.state})`);
}

export async function drainCommand(id: string, flags: ClientFlags, out: Out): Promise<void> {
  const a = await client(flags).call<AgentView>('POST', `/v1/agents/${enc(id)}/drain`);
  print(out, flags, a, () =>
    // A lost agent stays lost: the drain is recorded for when it comes back.
    a.state === 'lost'
      ? `${a.id} is lost; drain recorded: it re-registers draining`
      : `draining ${a.id} (${a.tasks} task${a.tasks === 1 ? '' : 's'} on it)`,
  );
}

/** Idempotent: an agent that was not draining is reported as it is, exit 0. */
export async function undrainCommand(id: string, flags: ClientFlags, out: Out): Promise<void> {
  const a = await client(flags).call<AgentView>('POST', `/v1/agents/${enc(id)}/undrain`);
  print(out, flags, a, () =>
    a.state === 'lost'
      ? `${a.id} is lost; not draining: it re-registers up`
      : `${a.id} is ${a.state}, taking placements (${a.tasks} task${a.tasks === 1 ? '' : 's'} on it)`,
  );
}

export { CliError, ExitCode };
