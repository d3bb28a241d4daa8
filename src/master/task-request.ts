import type { TaskRequest } from '../allocator/allocator.js';
import type { JobRecord } from './store.js';

/** What the allocator is told about one task of a job: for placement, and for adoption after a restart. */
export function taskRequestOf(id: string, job: JobRecord): TaskRequest {
  const s = job.spec;
  const r: TaskRequest = { id, job: job.name, resources: s.resources };
  if (s.role !== undefined) r.role = s.role;
  if (s.priority !== undefined) r.priority = s.priority;
  if (s.constraints !== undefined) r.constraints = s.constraints;
  if (s.placement !== undefined) r.policy = s.placement;
  return r;
}
