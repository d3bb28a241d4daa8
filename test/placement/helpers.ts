import { ConstraintCompiler } from '../../src/placement/constraints/compile.js';
import type { CompiledConstraints } from '../../src/placement/constraints/compiled.js';
import { PlacementQuery } from '../../src/placement/query.js';
import { Policy } from '../../src/placement/scoring/policy.js';
import { CommitResult, tryCommit } from '../../src/table/commit.js';
import { type NodeSpec, NodeTable } from '../../src/table/node-table.js';
import type { TableView } from '../../src/table/view.js';

export { codeOf, thrown } from '../resources/helpers.js';
export { expectNoOvercommit } from '../table/helpers.js';

export interface Cluster {
  t: NodeTable;
  v: TableView;
  /** Row of each node id. */
  row: Record<string, number>;
  compiler: ConstraintCompiler;
}

/** Builds a table from specs, in order (a fixed-order node source, as Nomad's StaticIterator). */
export function cluster(specs: NodeSpec[], limits: ConstructorParameters<typeof NodeTable>[0] = {}): Cluster {
  const t = new NodeTable(limits);
  const row: Record<string, number> = {};
  for (const s of specs) row[s.id] = t.addNode(s);
  return { t, v: t.view, row, compiler: new ConstraintCompiler(t.interner) };
}

/** A node with `cpus` cores, `memGi` GiB, 100 GiB disk, `gpus` gpus, ports 31000-31009. */
export function spec(id: string, cpus: number, memGi: number, gpus = 0, attributes: Record<string, string> = {}): NodeSpec {
  return { id, resources: { cpus, mem: `${memGi}Gi`, disk: '100Gi', gpus }, ports: '31000-31009', attributes };
}

/** Commits raw usage to a row (cpu in millicores, mem in MiB), failing the test if it does not fit. */
export function use(c: Cluster, id: string, cpu: number, mem: number, gpu = 0): void {
  const r = c.row[id]!;
  const res = tryCommit(c.v, r, Atomics.load(c.v.version, r), cpu, mem, 0, gpu, 0, new Int32Array(0), 0);
  if (res !== CommitResult.OK) throw new Error(`could not commit ${cpu}m/${mem}Mi to ${id}: result ${res}`);
}

/** A query in table units. */
export function query(
  cpu: number,
  mem: number,
  opts: { disk?: number; gpu?: number; ports?: number; policy?: number; cset?: CompiledConstraints | null } = {},
): PlacementQuery {
  return new PlacementQuery().set(
    cpu,
    mem,
    opts.disk ?? 0,
    opts.gpu ?? 0,
    opts.ports ?? 0,
    opts.policy ?? Policy.BINPACK,
    opts.cset ?? null,
    null,
  );
}
