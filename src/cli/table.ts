import { TASK_STATES } from '../proto/index.js';

/** Plain aligned columns, kubectl style: a header row, two spaces between columns, no borders. */
export function table(headers: string[], rows: (string | number | undefined)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === undefined || c === '' ? '-' : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n');
}

/** `running=3 pending=1` from a count-by-state object, in lifecycle order. */
export function counts(by: Partial<Record<string, number>>): string {
  const parts = TASK_STATES.filter((s) => (by[s] ?? 0) > 0).map((s) => `${s}=${by[s]}`);
  return parts.length > 0 ? parts.join(' ') : '-';
}

export function mib(n: number): string {
  return n >= 1024 && n % 1024 === 0 ? `${n / 1024}Gi` : n >= 1024 ? `${(n / 1024).toFixed(1)}Gi` : `${n}Mi`;
}

export function cores(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(2).replace(/0+$/, '');
}
