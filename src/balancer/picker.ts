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
 * Nothing here allocates: members, active counts, weights and pick sequence numbers are typed arrays.
 */
import { type EndpointTable, type Service, SlotState } from './endpoints.js';

export const FULL_SCAN_MAX = 32;

/**
 * The slot to send to, or -1 when the service has no member (other than `exclude`, the slot a retry moves away
 * from).
 */
export function pick(service: Service, table: EndpointTable, exclude = -1): number {
  const n = service.size;
  const members = service.members;
  const active = table.active;
  const weight = table.weight;
  const last = table.lastPick;
  let best = -1;
  if (n === 0) return -1;
  if (n === 1) {
    best = members[0] === exclude ? -1 : members[0];
  } else if (n > FULL_SCAN_MAX) {
    const i = (Math.random() * n) | 0;
    let j = (Math.random() * (n - 1)) | 0;
    if (j >= i) j++;
    let a = members[i];
    let b = members[j];
    if (a === exclude) a = b;
    else if (b === exclude) b = a;
    // b wins when (active_b + 1) / w_b < (active_a + 1) / w_a, or on a tie when it was picked less recently.
    const lhs = (active[b] + 1) * weight[a];
    const rhs = (active[a] + 1) * weight[b];
    best = lhs < rhs || (lhs === rhs && last[b] < last[a]) ? b : a;
  } else {
    for (let k = 0; k < n; k++) {
      const s = members[k];
      if (s === exclude) continue;
      if (best < 0) {
        best = s;
        continue;
      }
      const lhs = (active[s] + 1) * weight[best];
      const rhs = (active[best] + 1) * weight[s];
      if (lhs < rhs || (lhs === rhs && last[s] < last[best])) best = s;
    }
  }
  if (best >= 0) last[best] = ++table.picks;
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
