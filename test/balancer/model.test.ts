import { describe, expect, it } from 'vitest';
import { EndpointRegistry, SlotState } from '../../src/balancer/endpoints.js';
import { ClusterModel, type Snapshot } from '../../src/balancer/model.js';
import type { AgentView, JobView, TaskView } from '../../src/master/types.js';
import { taskView } from '../../src/master/views.js';
import type { TaskRecord } from '../../src/master/store.js';

function agent(id: string): AgentView {
  return {
    id, hostname: id, address: '127.0.0.1', peer: '127.0.0.1:1', state: 'up', isolation: 'none', attributes: {},
    resources: { cpus: 4, mem: 1024, disk: 0, gpus: 0, ports: '31000-32000' },
    used: { cpus: 0, mem: 0, disk: 0, gpus: 0, ports: 0 }, tasks: 0, lastHeartbeatAt: 0, registeredAt: 0,
  };
}

const web = {
  name: 'web',
  state: 'running',
  spec: { name: 'web', type: 'service', instances: 2, command: 'x', resources: { cpus: 1, mem: 64 }, http: { pathPrefix: '/' } },
} as unknown as JobView;

function task(id: string, port: number, extra: Partial<TaskView> = {}): TaskView {
  return { id, job: 'web', instance: 0, attempt: 0, state: 'running', ports: [port], history: [], agentId: 'a1', host: '127.0.0.1', healthy: true, ...extra };
}

function snapshot(tasks: TaskView[]): Snapshot {
  return { jobs: [web], tasks, agents: [agent('a1')] };
}

describe('cluster model: snapshots', () => {
  it('a task the snapshot shows being killed never becomes an endpoint', () => {
    const reg = new EndpointRegistry();
    const model = new ClusterModel(reg);
    model.reset(snapshot([task('web.0.0', 31000), task('web.1.0', 31001, { killing: true })]));
    expect([...reg.byId.keys()]).toEqual(['web.0.0']);
  });

  it('a resync that shows an endpoint being killed drains it: no new requests, in-flight ones finish', () => {
    const reg = new EndpointRegistry();
    const model = new ClusterModel(reg);
    model.reset(snapshot([task('web.0.0', 31000), task('web.1.0', 31001)]));
    const ep = reg.byId.get('web.1.0')!;
    expect(reg.table.state[ep.slot]).toBe(SlotState.UP);
    model.reset(snapshot([task('web.0.0', 31000), task('web.1.0', 31001, { killing: true })]));
    expect(reg.byId.get('web.1.0')).toBe(ep);
    expect(reg.table.state[ep.slot]).toBe(SlotState.DRAINING);
    // A later snapshot without the flag (the kill view is lost) must not bring it back.
    model.reset(snapshot([task('web.0.0', 31000), task('web.1.0', 31001)]));
    expect(reg.table.state[reg.byId.get('web.1.0')!.slot]).toBe(SlotState.DRAINING);
  });
});

describe('task views', () => {
  const base: TaskRecord = { id: 't', job: 'web', instance: 0, attempt: 0, state: 'running', ports: [31000], history: [], killRequested: false };

  it('say killing while a requested kill has not ended, and not after', () => {
    expect(taskView(base).killing).toBeUndefined();
    expect(taskView({ ...base, killRequested: true }).killing).toBe(true);
    expect(taskView({ ...base, killRequested: true, state: 'killed' }).killing).toBeUndefined();
  });
});
