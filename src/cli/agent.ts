/** `borealis agent`: runs an Agent in this process until SIGINT/SIGTERM, then kills its tasks and exits. */
import { Agent } from '../agent/index.js';
import { isBorealisError } from '../api/errors.js';
import { resolveMaster } from './client.js';
import { CliError, ExitCode } from './exit.js';

export interface AgentFlags {
  master?: string;
  resources: string;
  ports?: string;
  attributes?: string;
  advertiseIp?: string;
  workDir: string;
  hostname?: string;
  agentId?: string;
  isolation?: 'auto' | 'rss-poll';
}

export async function agentCommand(flags: AgentFlags): Promise<number> {
  let agent: Agent;
  try {
    agent = await Agent.start({
      master: resolveMaster(flags.master),
      resources: flags.resources,
      workDir: flags.workDir,
      ...(flags.ports === undefined ? {} : { ports: flags.ports }),
      ...(flags.attributes === undefined ? {} : { attributes: flags.attributes }),
      ...(flags.advertiseIp === undefined ? {} : { advertiseIp: flags.advertiseIp }),
      ...(flags.hostname === undefined ? {} : { hostname: flags.hostname }),
      ...(flags.agentId === undefined ? {} : { agentId: flags.agentId }),
      ...(flags.isolation === undefined ? {} : { isolation: flags.isolation }),
    });
  } catch (err) {
    if (isBorealisError(err)) throw new CliError(ExitCode.USAGE, `${err.code}: ${err.message}`, err.problems, err.code);
    throw err;
  }
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`borealis agent: ${signal}, killing tasks and stopping\n`);
      agent.stop({ killTasks: true }).then(resolve, (err: unknown) => {
        process.stderr.write(`borealis agent: stop failed: ${String(err)}\n`);
        resolve();
      });
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
  return ExitCode.OK;
}
