import type { Allocator, TaskRequest } from '../allocator/allocator.js';

/**
 * Which tasks hold resources in the allocator, and how to give them back. Tasks placed by the
 * allocator hold them from placement; tasks the master adopts — running on an agent that
 * re-registered with a restarted master — are charged through Allocator.adopt, with their exact
 * ports, so they count in DRF shares and in limit / distinct-hosts accounting like any other.
 */
export class Holdings {
  constructor(private readonly allocator: Allocator) {}

  holds(taskId: string): boolean {
    return this.allocator.assignmentOf(taskId) !== undefined;
  }

  /** Charges a task that already runs on `nodeId` with `ports` (idempotent). */
  adopt(request: TaskRequest, nodeId: string, ports: readonly number[]): void {
    if (this.holds(request.id)) return;
    this.allocator.adopt(request, nodeId, ports);
  }

  /** Gives a task's resources back; a no-op for a task that holds none. */
  release(taskId: string): void {
    if (this.holds(taskId)) this.allocator.release(taskId);
  }
}
