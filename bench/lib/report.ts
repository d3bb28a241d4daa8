import type { Histogram } from 'hdr-histogram-js';

export interface Percentiles {
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

/** p50/p99/p999/max of a nanosecond HDR histogram, in microseconds (3 decimals). */
export function percentilesUs(h: Histogram): Percentiles {
  const us = (ns: number): number => Math.round(ns) / 1000;
  if (h.totalCount === 0) return { p50: 0, p99: 0, p999: 0, max: 0 };
  return {
    p50: us(h.getValueAtPercentile(50)),
    p99: us(h.getValueAtPercentile(99)),
    p999: us(h.getValueAtPercentile(99.9)),
    max: us(h.maxValue),
  };
}

/** A plain fixed-width table for terminals. */
export function formatTable(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => String(c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}
