/**
 * Pending tasks in the order they are offered to placement: strictly by priority (higher first),
 * then, within a priority, by Dominant Resource Fairness between roles: the role whose largest
 * share of any cluster resource is smallest goes next (Ghodsi et al., NSDI 2011, as Mesos'
 * allocator does). Shares count what a role holds plus what it has been handed in the round being
 * built, so one large role cannot take a whole round while others wait.
 */

export interface Queued {
  role: string;
  priority: number;
  /** The largest share of any cluster resource one unit takes (what DRF charges per unit). */
  dominant: number;
  /** Tasks this item stands for: 1 for a task, n for a slice of a task group. */
  units: number;
}

/**
 * Largest slice of a group taken at once: fairness between roles is decided per take, so a
 * 10,000-instance group must not enter a round as one indivisible block.
 */
export const MAX_UNITS_PER_TAKE = 256;

interface RoleQueue<T> {
  role: string;
  items: T[];
  head: number;
  /** Share held plus share handed out in this round. */
  share: number;
  heapIndex: number;
}

/** A binary min-heap of roles by share; ties by role name so the order is deterministic. */
class RoleHeap<T> {
  readonly a: RoleQueue<T>[] = [];

  private less(x: RoleQueue<T>, y: RoleQueue<T>): boolean {
    return x.share < y.share || (x.share === y.share && x.role < y.role);
  }

  push(r: RoleQueue<T>): void {
    r.heapIndex = this.a.length;
    this.a.push(r);
    this.up(r.heapIndex);
  }

  peek(): RoleQueue<T> | undefined {
    return this.a[0];
  }

  /** Re-establishes order after the top's share grew. */
  fixTop(): void {
    this.down(0);
  }

  popTop(): void {
    const last = this.a.pop()!;
    if (this.a.length > 0) {
      this.a[0] = last;
      last.heapIndex = 0;
      this.down(0);
    }
  }

  private up(i: number): void {
    const a = this.a;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i]!, a[p]!)) break;
      this.swap(i, p);
      i = p;
    }
  }

  private down(i: number): void {
    const a = this.a;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && this.less(a[l]!, a[m]!)) m = l;
      if (r < a.length && this.less(a[r]!, a[m]!)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }

  private swap(i: number, j: number): void {
    const a = this.a;
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
    a[i]!.heapIndex = i;
    a[j]!.heapIndex = j;
  }
}

interface Level<T> {
  priority: number;
  roles: Map<string, RoleQueue<T>>;
  size: number;
}

export class PendingQueue<T extends Queued> {
  private readonly levels = new Map<number, Level<T>>();
  /** Priorities present, highest first. */
  private order: number[] = [];
  private count = 0;
  private unitCount = 0;
  /** Current dominant share per role, kept by the allocator as tasks commit and release. */
  private readonly heldShare: (role: string) => number;

  constructor(heldShare: (role: string) => number) {
    this.heldShare = heldShare;
  }

  /** Queued items (tasks and group slices). */
  get size(): number {
    return this.count;
  }

  /** Queued units (tasks, counting every instance of a queued group). */
  get units(): number {
    return this.unitCount;
  }

  push(item: T): void {
    let level = this.levels.get(item.priority);
    if (!level) {
      level = { priority: item.priority, roles: new Map(), size: 0 };
      this.levels.set(item.priority, level);
      this.order.push(item.priority);
      this.order.sort((a, b) => b - a);
    }
    let rq = level.roles.get(item.role);
    if (!rq) {
      rq = { role: item.role, items: [], head: 0, share: this.heldShare(item.role), heapIndex: -1 };
      level.roles.set(item.role, rq);
    }
    rq.items.push(item);
    level.size++;
    this.count++;
    this.unitCount += item.units;
  }

  /** Puts items back at the front of their role queues (a round could not take them). */
  unshift(items: T[]): void {
    for (let i = items.length - 1; i >= 0; i--) {
      const item = items[i]!;
      let level = this.levels.get(item.priority);
      if (!level) {
        this.push(item);
        continue;
      }
      let rq = level.roles.get(item.role);
      if (!rq) {
        rq = { role: item.role, items: [], head: 0, share: this.heldShare(item.role), heapIndex: -1 };
        level.roles.set(item.role, rq);
      }
      if (rq.head > 0) rq.items[--rq.head] = item;
      else rq.items.unshift(item);
      level.size++;
      this.count++;
      this.unitCount += item.units;
    }
  }

  /**
   * Takes up to `max` units in fairness order. `accept` may refuse an item (it stays queued, in
   * place, and its role is skipped for the rest of this call). An item of more units than fit (or
   * than MAX_UNITS_PER_TAKE) is cut with `split(item, n)`, which returns the first n units as a new
   * item and leaves the rest in `item`, still at the head of its queue. If `accept` refuses such a
   * part, `join(item, part)` undoes the split (by default the part's units are simply given back;
   * a split that moved more than `units`, such as a slice's start, must pass its own join).
   * `fit(item)`, when given, caps the units taken from an item (0 refuses it for this call).
   */
  take(
    max: number,
    accept: (item: T) => boolean,
    split?: (item: T, n: number) => T,
    join?: (item: T, part: T) => void,
    fit?: (item: T) => number,
  ): T[] {
    const out: T[] = [];
    let taken = 0;
    for (const priority of this.order) {
      const level = this.levels.get(priority)!;
      // Shares are re-read from the allocator at the start of each call (releases lower them), and
      // the heap is built per call: it only lives while one round is cut.
      const heap = new RoleHeap<T>();
      for (const rq of level.roles.values()) {
        rq.share = this.heldShare(rq.role);
        if (rq.head < rq.items.length) heap.push(rq);
      }
      while (taken < max) {
        const rq = heap.peek();
        if (!rq) break;
        const head = rq.items[rq.head]!;
        let room = Math.min(max - taken, MAX_UNITS_PER_TAKE);
        // The caller may hold room for fewer units of this item (a round's port budget, say).
        if (fit !== undefined) room = Math.min(room, fit(head));
        if (room <= 0) {
          heap.popTop();
          continue;
        }
        if (head.units > room && split !== undefined) {
          const part = split(head, room);
          if (!accept(part)) {
            if (join !== undefined) join(head, part);
            else head.units += part.units; // give the units back: the split is undone
            heap.popTop();
            continue;
          }
          this.unitCount -= part.units;
          out.push(part);
          taken += part.units;
          rq.share += part.dominant * part.units;
          heap.fixTop();
          continue;
        }
        const item = head;
        if (!accept(item)) {
          heap.popTop();
          continue;
        }
        rq.items[rq.head] = undefined as unknown as T;
        rq.head++;
        level.size--;
        this.count--;
        out.push(item);
        taken += item.units;
        this.unitCount -= item.units;
        rq.share += item.dominant * item.units;
        if (rq.head === rq.items.length) {
          rq.items = [];
          rq.head = 0;
          heap.popTop();
        } else {
          heap.fixTop();
        }
      }
      if (taken >= max) break;
    }
    this.compact();
    return out;
  }

  private compact(): void {
    for (const [priority, level] of this.levels) {
      for (const [role, rq] of level.roles) {
        if (rq.head >= rq.items.length) level.roles.delete(role);
        else if (rq.head > 1024 && rq.head * 2 > rq.items.length) {
          rq.items = rq.items.slice(rq.head);
          rq.head = 0;
        }
      }
      if (level.size === 0) {
        this.levels.delete(priority);
        this.order = this.order.filter((p) => p !== priority);
      }
    }
  }
}
