import { BadPortRangeError } from '../api/errors.js';

/** Mesos' default task port range, used when a node does not say. */
export const DEFAULT_PORT_RANGES: readonly PortRange[] = [{ begin: 31000, end: 32000 }];

/** An inclusive range of TCP ports. */
export interface PortRange {
  begin: number;
  end: number;
}

/**
 * Parses `31000-32000`, `8080`, or several comma-separated ranges (`8000-8010,31000-32000`).
 * Ranges are sorted and must not overlap: an overlap is almost always a typo.
 */
export function parsePortRanges(text: string | readonly PortRange[]): PortRange[] {
  const ranges: PortRange[] = [];
  if (typeof text !== 'string') {
    for (const r of text) ranges.push(checkRange(r.begin, r.end, `${r.begin}-${r.end}`));
  } else {
    const trimmed = text.trim();
    if (trimmed === '') throw new BadPortRangeError('port range is empty');
    for (const part of trimmed.replace(/^\[|\]$/g, '').split(',')) {
      const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
      if (!m) throw new BadPortRangeError(`port range ${JSON.stringify(part.trim())} is not like 31000-32000`);
      const begin = Number(m[1]);
      const end = m[2] === undefined ? begin : Number(m[2]);
      ranges.push(checkRange(begin, end, part.trim()));
    }
  }
  ranges.sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i]!.begin <= ranges[i - 1]!.end) {
      throw new BadPortRangeError(
        `port ranges ${ranges[i - 1]!.begin}-${ranges[i - 1]!.end} and ${ranges[i]!.begin}-${ranges[i]!.end} overlap`,
      );
    }
  }
  return ranges;
}

function checkRange(begin: number, end: number, raw: string): PortRange {
  if (!Number.isInteger(begin) || !Number.isInteger(end)) throw new BadPortRangeError(`port range ${raw} is not whole numbers`);
  if (begin < 1 || end > 65535) throw new BadPortRangeError(`port range ${raw} is outside 1-65535`);
  if (end < begin) throw new BadPortRangeError(`port range ${raw} ends before it begins`);
  return { begin, end };
}

/** Total number of ports in a set of ranges. */
export function countPorts(ranges: readonly PortRange[]): number {
  let n = 0;
  for (const r of ranges) n += r.end - r.begin + 1;
  return n;
}

export function formatPortRanges(ranges: readonly PortRange[]): string {
  return ranges.map((r) => (r.begin === r.end ? String(r.begin) : `${r.begin}-${r.end}`)).join(',');
}
