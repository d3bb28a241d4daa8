/**
 * The dashboard's static files (src/ui/static), read from disk once and kept in memory: a few KiB of text that
 * every page load asks for, so no request touches the disk. tsc does not copy non-TS files into dist/, so the
 * directory is found relative to the package root from wherever this module runs (src/ui under vitest and tsx,
 * dist/src/ui after a build, node_modules/borealis/dist/src/ui once installed).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the files live relative to the package root. */
export const STATIC_SUBDIR = join('src', 'ui', 'static');

/** The page and the files it loads; nothing else under the directory is served (no listing, no traversal). */
export const ASSET_NAMES = ['index.html', 'app.js', 'style.css', 'favicon.svg'] as const;
export type AssetName = (typeof ASSET_NAMES)[number];

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  // RFC 9239 names text/javascript as the one JavaScript media type.
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml; charset=utf-8',
};

/**
 * In index.html, `{{v:NAME}}` becomes the first 12 hex digits of NAME's SHA-256, so the page asks for
 * `/ui/app.js?v=HASH`: a URL that names exactly one version of the file and may be cached for good.
 */
const VERSION_PLACEHOLDER = /\{\{v:([a-z0-9.-]+)\}\}/g;

export interface StaticAsset {
  readonly name: AssetName;
  readonly body: string;
  readonly contentType: string;
  /** Content hash (hex, 12 digits): the ETag and the `?v=` of versioned URLs. */
  readonly version: string;
}

/** The first directory, walking up from this module, that holds `src/ui/static/index.html`. */
export function findStaticDir(from: string = dirname(fileURLToPath(import.meta.url))): string | null {
  for (let dir = resolve(from); ; ) {
    const candidate = join(dir, STATIC_SUBDIR);
    if (existsSync(join(candidate, 'index.html'))) return candidate;
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

function hashOf(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}

/** Reads every asset from `dir` (throws when one is missing) and stamps index.html with their versions. */
export function loadAssets(dir: string): Map<AssetName, StaticAsset> {
  const raw = new Map<AssetName, string>();
  for (const name of ASSET_NAMES) raw.set(name, readFileSync(join(dir, name), 'utf8'));
  const out = new Map<AssetName, StaticAsset>();
  for (const [name, text] of raw) {
    let body = text;
    if (name === 'index.html') {
      body = text.replace(VERSION_PLACEHOLDER, (whole, ref: string) => {
        const target = raw.get(ref as AssetName);
        if (target === undefined) throw new Error(`index.html refers to ${ref}, which is not a dashboard asset`);
        return hashOf(target);
      });
    }
    out.set(name, { name, body, contentType: CONTENT_TYPES[extname(name)] ?? 'application/octet-stream', version: hashOf(body) });
  }
  return out;
}
