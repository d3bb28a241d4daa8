/**
 * Host and path routing: which service a request goes to.
 *
 * Host first, most specific tier first: exact host names, then `*.suffix` wildcards (longest suffix first), then
 * services that name no host. Within a tier, the longest path prefix that matches on a segment boundary wins
 * (`/api` matches `/api`, `/api/` and `/api/v1`, never `/apix`). When a tier has hosts that match but no prefix
 * that does, the next tier is tried, so a catch-all service still answers paths a host-specific one leaves out.
 * Two services on the same host and prefix: the first by name wins (deterministic, and logged by the caller).
 * Paths arrive normalised (normalize-path.ts: the proxy routes and forwards the same form); prefixes are put in
 * that form too, so `/api//v1` or `/%7Euser` still match what they mean.
 */
import { normaliseTarget } from './normalize-path.js';

export interface RouteSpec {
  service: string;
  /** Exact names or `*.suffix`; absent or empty: any host. */
  hosts?: readonly string[];
  /** Default `/`. */
  pathPrefix?: string;
}

interface Entry {
  service: string;
  /** Normalised: no trailing slash, except the root `/`. */
  prefix: string;
}

export class RouteTable {
  /** Exact host -> entries, longest prefix first. */
  readonly #exact = new Map<string, Entry[]>();
  /** `.suffix` (with its dot) -> entries, suffixes longest first. */
  readonly #wild: { suffix: string; entries: Entry[] }[] = [];
  readonly #any: Entry[] = [];
  #lastHostHeader = '';
  #lastHost = '';
  /** Pairs that lost to an earlier service on the same host and prefix. */
  readonly shadowed: { service: string; by: string; host: string; prefix: string }[] = [];

  constructor(specs: readonly RouteSpec[]) {
    const sorted = [...specs].sort((a, b) => (a.service < b.service ? -1 : a.service > b.service ? 1 : 0));
    const wild = new Map<string, Entry[]>();
    for (const s of sorted) {
      const entry: Entry = { service: s.service, prefix: normalisePrefix(s.pathPrefix ?? '/') };
      const hosts = s.hosts ?? [];
      if (hosts.length === 0) this.#add(this.#any, entry, '*');
      for (const raw of hosts) {
        const h = raw.toLowerCase();
        if (h.startsWith('*.')) {
          const suffix = h.slice(1);
          let list = wild.get(suffix);
          if (!list) wild.set(suffix, (list = []));
          this.#add(list, entry, h);
        } else {
          let list = this.#exact.get(h);
          if (!list) this.#exact.set(h, (list = []));
          this.#add(list, entry, h);
        }
      }
    }
    for (const [suffix, entries] of wild) this.#wild.push({ suffix, entries });
    this.#wild.sort((a, b) => b.suffix.length - a.suffix.length);
  }

  get size(): number {
    return this.#any.length + this.#wild.length + this.#exact.size;
  }

  /**
   * The service for a Host header value (any case, with or without a port) and a request path (no query);
   * null when nothing matches.
   */
  match(hostHeader: string | undefined, path: string): string | null {
    let host = '';
    if (hostHeader !== undefined) {
      // Clients send the same few Host values over and over: the last one's normal form is kept.
      if (hostHeader !== this.#lastHostHeader) {
        this.#lastHostHeader = hostHeader;
        this.#lastHost = normaliseHost(hostHeader);
      }
      host = this.#lastHost;
    }
    if (host !== '') {
      const exact = this.#exact.get(host);
      if (exact) {
        const s = matchPrefix(exact, path);
        if (s !== null) return s;
      }
      for (let i = 0; i < this.#wild.length; i++) {
        const w = this.#wild[i];
        // `*.example.com` covers any depth of subdomain, but not example.com itself.
        if (host.length > w.suffix.length && host.endsWith(w.suffix)) {
          const s = matchPrefix(w.entries, path);
          if (s !== null) return s;
        }
      }
    }
    return matchPrefix(this.#any, path);
  }

  #add(list: Entry[], entry: Entry, host: string): void {
    const same = list.find((e) => e.prefix === entry.prefix);
    if (same) {
      this.shadowed.push({ service: entry.service, by: same.service, host, prefix: entry.prefix });
      return;
    }
    list.push(entry);
    list.sort((a, b) => b.prefix.length - a.prefix.length);
  }
}

function matchPrefix(entries: readonly Entry[], path: string): string | null {
  for (let i = 0; i < entries.length; i++) {
    const p = entries[i].prefix;
    if (p === '/') return entries[i].service;
    // A prefix matches the same path, or a longer one whose next character starts a new segment.
    if (path.startsWith(p) && (path.length === p.length || path.charCodeAt(p.length) === 47 /* / */)) return entries[i].service;
  }
  return null;
}

/** In the form request paths are matched in (normalize-path.ts), without its trailing slash except for `/`. */
export function normalisePrefix(prefix: string): string {
  let p = normaliseTarget(prefix.startsWith('/') ? prefix : `/${prefix}`);
  while (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  return p;
}

/** Lower case, port stripped (`Example.COM:8080` -> `example.com`, `[::1]:80` -> `[::1]`), trailing dot dropped. */
export function normaliseHost(value: string): string {
  let h = value.trim();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    h = end < 0 ? h : h.slice(0, end + 1);
  } else {
    const colon = h.indexOf(':');
    if (colon >= 0) h = h.slice(0, colon);
  }
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h.toLowerCase();
}
