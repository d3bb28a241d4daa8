/** GET /v1/tasks filters by state and pages with offset/limit, with the total before paging; bad values are 400s. */
import { describe, expect, it } from 'vitest';
import { apiFixture } from './helpers.js';

const fx = apiFixture();

async function get(addr: string, path: string): Promise<{ status: number; body: any }> {
  const r = await fetch(`http://${addr}${path}`);
  return { status: r.status, body: await r.json() };
}

describe('GET /v1/tasks paging and state filter', () => {
  it('filters, pages in listing order and counts the total', async () => {
    const { master, addr } = await fx.start();
    // No agents: all 25 pending.
    await master.submitJob({ name: 'p', type: 'service', instances: 25, command: 'true', resources: { cpus: 0.1, mem: 16 } });
    const all = await get(addr, '/v1/tasks');
    expect(all.body.total).toBe(25);
    const ids = (all.body.tasks as { id: string }[]).map((t) => t.id);
    const page = await get(addr, '/v1/tasks?offset=10&limit=5');
    expect(page.body.total).toBe(25);
    expect((page.body.tasks as { id: string }[]).map((t) => t.id)).toEqual(ids.slice(10, 15));
    expect((await get(addr, '/v1/tasks?offset=30')).body).toEqual({ tasks: [], total: 25 });
    expect((await get(addr, '/v1/tasks?state=pending&limit=3')).body.tasks).toHaveLength(3);
    expect((await get(addr, '/v1/tasks?state=running,lost')).body).toEqual({ tasks: [], total: 0 });
    expect((await get(addr, '/v1/tasks?job=p&state=pending')).body.total).toBe(25);
  });

  it('refuses a bad state, offset or limit with 400 naming the parameter', async () => {
    const { addr } = await fx.start();
    for (const [q, path] of [
      ['state=sleeping', 'state'],
      ['state=pending,', 'state'],
      ['limit=0', 'limit'],
      ['limit=-1', 'limit'],
      ['limit=1e3', 'limit'],
      ['limit=100001', 'limit'],
      ['offset=x', 'offset'],
    ] as const) {
      const r = await get(addr, `/v1/tasks?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body, q).toMatchObject({ code: 'BRL_ERR_INVALID_ARGUMENT', problems: [{ path }] });
    }
  });
});
