/**
 * GET /ui (the dashboard page) and GET /ui/:asset (its script, stylesheet and icon), served from memory. The page
 * learns everything else from the event stream (GET /v1/events), so these routes are the dashboard's whole server
 * side.
 */
import { BorealisError, ErrorCodes } from '../api/errors.js';
import type { HttpRequest, HttpResponse, HttpServer } from '../transport/index.js';
import { ASSET_NAMES, type AssetName, type StaticAsset, STATIC_SUBDIR, findStaticDir, loadAssets } from './assets.js';

export const UI_PATH = '/ui';

export interface DashboardOptions {
  /** Where the static files are (default: found from the package root, see assets.ts). */
  dir?: string;
}

/**
 * The page itself is revalidated on every load (an ETag makes that a 304), so a restarted master with a new build
 * is picked up at once; the files it loads are asked for by versioned URLs (`?v=HASH`), which never change
 * meaning and are cached for a year. An unversioned or stale `?v=` is revalidated like the page.
 */
const CACHE_PAGE = 'no-cache';
const CACHE_VERSIONED = 'public, max-age=31536000, immutable';

/**
 * Everything the page needs is its own origin: scripts and styles from /ui, the WebSocket to /v1/events. Inline
 * script and style stay forbidden (element.style from the script is allowed; the page uses no inline markup).
 */
const PAGE_CSP = "default-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const ASSET_SET: ReadonlySet<string> = new Set(ASSET_NAMES);

/** Registers the dashboard's routes. Reads the files now, once; a missing directory makes the routes answer 503. */
export function mountDashboard(server: HttpServer, opts: DashboardOptions = {}): void {
  const dir = opts.dir ?? findStaticDir();
  let assets: Map<AssetName, StaticAsset> | null = null;
  let problem = `the dashboard's files are not installed (no ${STATIC_SUBDIR}/index.html above the package)`;
  if (dir !== null) {
    try {
      assets = loadAssets(dir);
    } catch (err) {
      problem = `the dashboard's files under ${dir} cannot be read: ${(err as Error).message}`;
    }
  }
  const get = (name: string): StaticAsset => {
    if (assets === null) throw new BorealisError(ErrorCodes.UNAVAILABLE, problem);
    const a = ASSET_SET.has(name) ? assets.get(name as AssetName) : undefined;
    if (a === undefined) throw new BorealisError(ErrorCodes.NOT_FOUND, `no dashboard asset ${JSON.stringify(name)} (known: ${ASSET_NAMES.join(', ')})`);
    return a;
  };
  server.route('GET', UI_PATH, (req) => respond(req, get('index.html'), false));
  server.route('GET', `${UI_PATH}/:asset`, (req) => {
    const a = get(req.params.asset);
    return respond(req, a, req.query.get('v') === a.version);
  });
}

function respond(req: HttpRequest, a: StaticAsset, versioned: boolean): HttpResponse {
  const etag = `"${a.version}"`;
  const headers: Record<string, string> = {
    'Cache-Control': versioned ? CACHE_VERSIONED : CACHE_PAGE,
    ETag: etag,
    'X-Content-Type-Options': 'nosniff',
  };
  if (a.name === 'index.html') {
    headers['Content-Security-Policy'] = PAGE_CSP;
    headers['Referrer-Policy'] = 'no-referrer';
  }
  if (matchesEtag(req.headers['if-none-match'], etag)) return { status: 304, text: '', contentType: a.contentType, headers };
  return { status: 200, text: a.body, contentType: a.contentType, headers };
}

/** If-None-Match is a list of (possibly weak) tags or `*`. */
function matchesEtag(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  for (const part of header.split(',')) {
    const t = part.trim();
    if (t === '*' || t === etag || t === `W/${etag}`) return true;
  }
  return false;
}
