import type { HttpHandler, HttpMethod } from './types.js';

interface Route {
  method: HttpMethod;
  segments: string[];
  handler: HttpHandler;
}

export type RouteMatch =
  | { kind: 'found'; handler: HttpHandler; params: Record<string, string> }
  /** The path exists under other methods: 405 with Allow. */
  | { kind: 'method'; allow: HttpMethod[] }
  | { kind: 'none' };

/**
 * Method + path routing over a flat list: the API has a dozen routes, so a linear scan per request costs less
 * than any tree would save. Literal segments match exactly; `:name` segments match one non-empty segment.
 */
export class Router {
  readonly #routes: Route[] = [];

  add(method: HttpMethod, path: string, handler: HttpHandler): void {
    this.#routes.push({ method, segments: split(path), handler });
  }

  match(method: string, path: string): RouteMatch {
    const parts = split(path);
    const allow: HttpMethod[] = [];
    for (const r of this.#routes) {
      const params = matchSegments(r.segments, parts);
      if (params === null) continue;
      if (r.method === method) return { kind: 'found', handler: r.handler, params };
      allow.push(r.method);
    }
    return allow.length > 0 ? { kind: 'method', allow } : { kind: 'none' };
  }
}

function split(path: string): string[] {
  return path.split('/').filter((s) => s !== '');
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | null {
  if (pattern.length !== parts.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    const s = parts[i];
    if (p.startsWith(':')) {
      let v: string;
      try {
        v = decodeURIComponent(s);
      } catch {
        return null;
      }
      params[p.slice(1)] = v;
    } else if (p !== s) {
      return null;
    }
  }
  return params;
}
