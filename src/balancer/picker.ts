/**
 * Weighted least-connections: send the request to the member with the smallest (active + 1) / weight.
 *
 * The +1 counts the request being placed, so an idle heavy endpoint beats an idle light one and, under load, the
 * active counts settle in proportion to the weights (HAProxy's leastconn keys servers the same way, by
 * (conns + 1) / weight; Envoy's LEAST_REQUEST divides the weight by active + 1). Scores are compared by cross
 * multiplication, (a + 1) * w' < (a' + 1) * w, so there is no division and weights may be fractional (cpus).
 *
 * Ties go to the member picked least recently (a pick sequence number per slot). That is HAProxy's rule
 * ("round-robin within groups of servers of the same load"): no member is favoured for its position, equal
 * members share exactly evenly rather than only on average, and an idle service answers sequential requests
 * from its endpoints in turn.
 *
 * Up to FULL_SCAN_MAX members the scan is exact. Above it, two random members are compared (power of two
 * choices, Mitzenmacher; Envoy's default choice_count is 2): the exact scan is O(n) per request, while two
 * choices are O(1) and provably keep the maximum load within O(log log n) of the mean, which at that size is
 * indistinguishable from the exact choice. 32 is where a scan of the typed arrays (a few ns per member) starts
 * to cost more than the proxying around it is worth, and where one worst pick is at most ~3% of the set, so the
 * approximation's error is small.
 *
 * Starting endpoints (endpoints.ts: not yet `proven`) are kept out of the way in two cases, each a filter on the
 * same choice rather than another policy, so the scoring above is untouched:
 * - a starting endpoint that just refused a connection is *held* (`heldUntil`, set by outlier.ts) and skipped while
 *   another member can take the request;
 * - a retry (`exclude` ≥ 0) goes to a proven member when there is one: the first attempt failed, so the second
 *   should go where an answer is known to come from, not to another instance that may still be booting.
 * When a filter leaves no member, the choice falls back to the next wider set (proven → not held → any), so a
 * service of starting endpoints only is served (and fails) as it would be without the filters.
 *
 * This is the balancer-side half of what HAProxy's `slowstart` and Envoy's slow start window do for a server that
 * has just come up: both keep a new server from receiving a full share at once. They ramp its weight over a
 * configured window, since an unready server there is one that answers slowly; here the typical unready endpoint
 * does not listen yet, so rather than scale its weight we stop sending to it from its first refusal until a
 * request gets through (the hold is short, so it is probed a few times a second, each probe retried elsewhere).
 *
 * Nothing here allocates: members, active counts, weights, pick sequence numbers and holds are typed arrays; the
 * clock is read only while the service has a held endpoint.
 */
import { type EndpointTable, type Service, SlotState } from './endpoints.js';

export const FULL_SCAN_MAX = 32;

/** Which members a choice may land on (besides never `exclude`). */
const ANY = 0;
/** Not held: a starting endpoint that refused lately is skipped. */
const NOT_HELD = 1;
/** Proven only: endpoints that have answered before. */
const PROVEN = 2;
type Among = typeof ANY | typeof NOT_HELD | typeof PROVEN;

/**
 * The slot to send to, or -1 when the service has no member (other than `exclude`, the slot a retry moves away
 * from). With `exclude` ≥ 0 (a retry), proven members are preferred.
 */
export function pick(service: Service, table: EndpointTable, exclude = -1): number {
  if (service.size === 0) return -1;
  let best = -1;
  if (exclude >= 0) best = choose(service, table, exclude, PROVEN, 0);
  if (best < 0 && service.heldUntil !== 0) {
    const now = Date.now();
    if (now < service.heldUntil) best = choose(service, table, exclude, NOT_HELD, now);
    else service.heldUntil = 0;
  }
  if (best < 0) best = choose(service, table, exclude, ANY, 0);
  if (best >= 0) table.lastPick[best] = ++table.picks;
  return best;
}

/** Whether slot `s` may be chosen by a pick `among` that set (`now` is read only for NOT_HELD). */
function fits(table: EndpointTable, s: number, exclude: number, among: Among, now: number): boolean {
  if (s === exclude) return false;
  if (among === ANY) return true;
  return among === PROVEN ? table.proven[s] === 1 : table.heldUntil[s] <= now;
}

/** Weighted least-connections over the members that fit (see the file comment); -1 when none does. */
function choose(service: Service, table: EndpointTable, exclude: number, among: Among, now: number): number {
  const n = service.size;
  const members = service.members;
  const active = table.active;
  const weight = table.weight;
  const last = table.lastPick;
  if (n === 1) return fits(table, members[0], exclude, among, now) ? members[0] : -1;
  if (n > FULL_SCAN_MAX) {
    const i = (Math.random() * n) | 0;
    let j = (Math.random() * (n - 1)) | 0;
    if (j >= i) j++;
    let a = members[i];
    let b = members[j];
    if (!fits(table, a, exclude, among, now)) a = b;
    else if (!fits(table, b, exclude, among, now)) b = a;
    // Both draws unfit (only possible under a filter, and then briefly): the exact scan below finds one if any.
    if (fits(table, a, exclude, among, now)) {
      // b wins when (active_b + 1) / w_b < (active_a + 1) / w_a, or on a tie when it was picked less recently.
      const lhs = (active[b] + 1) * weight[a];
      const rhs = (active[a] + 1) * weight[b];
      return lhs < rhs || (lhs === rhs && last[b] < last[a]) ? b : a;
    }
  }
  let best = -1;
  for (let k = 0; k < n; k++) {
    const s = members[k];
    if (!fits(table, s, exclude, among, now)) continue;
    if (best < 0) {
      best = s;
      continue;
    }
    const lhs = (active[s] + 1) * weight[best];
    const rhs = (active[best] + 1) * weight[s];
    if (lhs < rhs || (lhs === rhs && last[s] < last[best])) best = s;
  }
  return best;
}

/**
 * Panic routing (Envoy's term): when every endpoint of a service is ejected, outlier detection has no healthy
 * set to protect, and refusing everything would turn a partial failure into a total one. Pick the least loaded of
 * the ejected endpoints instead. Rare path: it may iterate a Map.
 */
export function pickPanic(service: Service, table: EndpointTable, exclude = -1): number {
  let best = -1;
  for (const ep of service.endpoints.values()) {
    const s = ep.slot;
    if (s === exclude || table.state[s] !== SlotState.EJECTED) continue;
    if (best < 0 || (table.active[s] + 1) * table.weight[best] < (table.active[best] + 1) * table.weight[s]) best = s;
  }
  return best;
}
