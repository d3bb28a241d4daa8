/**
 * What an agent offers the cluster, parsed once from its flags into the wire shape (table units: millicores, MiB,
 * MiB, whole gpus, port ranges): `--resources cpus=4,mem=8Gi,disk=20Gi,gpus=0`, `--ports 31000-32000`,
 * `--attributes zone=a,rack=r1`. Unlike Mesos, nothing is guessed from the machine: the operator says what the
 * agent may hand out, and a dimension left out is offered as zero (except ports, which default to Mesos' range).
 */
import { BadResourcesError, isBorealisError } from '../api/errors.js';
import type { FieldProblem } from '../api/errors.js';
import { DEFAULT_PORT_RANGES, parseAttributes, parseCount, parseCpus, parseMebibytes, parsePortRanges } from '../resources/index.js';
import type { PortRange } from '../resources/index.js';
import type { ResourcesMsg } from '../proto/index.js';

export interface AgentOffer {
  resources: ResourcesMsg & { cpusMilli: number; memMib: number; diskMib: number; gpus: number; ports: PortRange[] };
  attributes: Record<string, string>;
}

const SCALARS = ['cpus', 'mem', 'disk', 'gpus'] as const;

/**
 * `ports` may also be given inside the resources string (`...,gpus=0,ports=31000-32000`, as `borealis agent
 * --resources` accepts); a comma-separated continuation without `=` belongs to it (`ports=8000-8010,31000-32000`).
 */
export function parseOffer(resources: string, ports?: string, attributes?: string): AgentOffer {
  if (typeof resources !== 'string') {
    throw new BadResourcesError('resources must be a string like "cpus=4,mem=8Gi,disk=20Gi,gpus=0"', [
      { path: 'resources', message: 'required' },
    ]);
  }
  const problems: FieldProblem[] = [];
  const fields = new Map<string, string>();
  let last: string | undefined;
  for (const part of resources.split(',')) {
    const trimmed = part.trim();
    if (trimmed === '') continue;
    const eq = trimmed.indexOf('=');
    if (eq < 0 && last === 'ports') {
      fields.set('ports', `${fields.get('ports')},${trimmed}`);
      continue;
    }
    if (eq <= 0) {
      problems.push({ path: 'resources', message: `${JSON.stringify(trimmed)} is not name=value` });
      continue;
    }
    const key = trimmed.slice(0, eq).trim();
    if (!(SCALARS as readonly string[]).includes(key) && key !== 'ports') {
      problems.push({ path: `resources.${key}`, message: 'unknown resource (use cpus, mem, disk, gpus, ports)' });
    } else if (fields.has(key)) {
      problems.push({ path: `resources.${key}`, message: 'given twice' });
    }
    fields.set(key, trimmed.slice(eq + 1).trim());
    last = key;
  }

  const out = { cpusMilli: 0, memMib: 0, diskMib: 0, gpus: 0, ports: [] as PortRange[] };
  const field = (path: string, parse: () => void): void => {
    try {
      parse();
    } catch (err) {
      if (!isBorealisError(err)) throw err;
      problems.push({ path, message: err.message });
    }
  };
  const raw = (key: string): string | undefined => fields.get(key);
  field('resources.cpus', () => {
    if (raw('cpus') !== undefined) out.cpusMilli = parseCpus(raw('cpus'));
  });
  field('resources.mem', () => {
    if (raw('mem') !== undefined) out.memMib = parseMebibytes(raw('mem'), 'mem');
  });
  field('resources.disk', () => {
    if (raw('disk') !== undefined) out.diskMib = parseMebibytes(raw('disk'), 'disk');
  });
  field('resources.gpus', () => {
    if (raw('gpus') !== undefined) out.gpus = parseCount(raw('gpus'), 'gpus');
  });
  if (ports !== undefined && raw('ports') !== undefined) {
    problems.push({ path: 'ports', message: 'given both in resources and on its own' });
  }
  const portText = ports ?? raw('ports');
  field(ports !== undefined ? 'ports' : 'resources.ports', () => {
    out.ports = portText === undefined ? DEFAULT_PORT_RANGES.map((r) => ({ ...r })) : parsePortRanges(portText);
  });
  if (problems.length === 0 && out.cpusMilli === 0 && out.memMib === 0) {
    problems.push({ path: 'resources', message: 'offers neither cpus nor mem: no task could ever be placed here' });
  }
  let attrs: Record<string, string> = {};
  field('attributes', () => {
    attrs = attributes === undefined ? {} : { ...parseAttributes(attributes) };
  });
  if (problems.length > 0) {
    throw new BadResourcesError(`invalid agent resources: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems);
  }
  return { resources: out, attributes: attrs };
}
