/**
 * The agent's own bridge network. Sessions never share the host's network or
 * the default bridge, and with inter-container traffic off they cannot reach
 * each other either; the agent reaches each container at its address here.
 */
import type Docker from 'dockerode';
import type { Logger } from '../../logger';
import { isConflict, isNotFound } from './docker-errors';

export function networkName(agentName: string): string {
  const safe = agentName.toLowerCase().replace(/[^a-z0-9_.-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 48);
  return `mominai-${safe || 'agent'}`;
}

export interface NetworkInfo {
  name: string;
  /** The host's bridge interface, which the egress policy matches (`-i <bridge>`). */
  bridge: string;
}

export class AgentNetwork {
  private ready: Promise<NetworkInfo> | undefined;

  constructor(
    private readonly docker: Docker,
    readonly name: string,
    private readonly labels: Record<string, string>,
    private readonly logger: Logger,
  ) {}

  /** The network's name once it exists; created on first use, then remembered. */
  async ensure(): Promise<string> {
    return (await this.info()).name;
  }

  /** The network's name and bridge interface once it exists. */
  info(): Promise<NetworkInfo> {
    this.ready ??= this.create().catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  /** Forgets that the network exists, after the engine said it does not (someone removed it). */
  forget(): void {
    this.ready = undefined;
  }

  private async create(): Promise<NetworkInfo> {
    try {
      return toInfo(this.name, await this.docker.getNetwork(this.name).inspect());
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    try {
      await this.docker.createNetwork({
        Name: this.name,
        Driver: 'bridge',
        CheckDuplicate: true,
        // Docker then turns IPv6 off inside the containers too: no fe80::/10 or fc00::/7 route exists for them.
        EnableIPv6: false,
        Labels: this.labels,
        Options: { 'com.docker.network.bridge.enable_icc': 'false' },
      });
      this.logger.info('created the agent network', { network: this.name });
    } catch (err) {
      // Another agent process on this engine made it between our look and our create.
      if (!isConflict(err)) throw err;
    }
    return toInfo(this.name, await this.docker.getNetwork(this.name).inspect());
  }
}

function toInfo(name: string, inspect: { Id: string; Options?: Record<string, string> }): NetworkInfo {
  return { name, bridge: inspect.Options?.['com.docker.network.bridge.name'] || `br-${inspect.Id.slice(0, 12)}` };
}
