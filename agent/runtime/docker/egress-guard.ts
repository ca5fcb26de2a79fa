/**
 * The egress policy of one agent's bridge over its lifetime: installed on
 * demand (./egress-policy.ts), checked before every container joins the
 * bridge (re-installed when someone removed its jumps or the bridge
 * changed), and removed on a clean exit unless containers still sit on the
 * bridge (they outlive the agent).
 */
import type Docker from 'dockerode';
import { AppError, ErrorCode } from '../../../shared/errors';
import type { Logger } from '../../logger';
import type { EgressState } from '../runtime';
import { isNotFound } from './docker-errors';
import { EgressPolicy, sweepStaleChains, type Iptables } from './egress-policy';
import type { AgentNetwork } from './network';
import { RulesetWatch } from './ruleset-watch';

export interface EgressSettings {
  allowCidrs: readonly string[];
  iptables?: Iptables;
  /** A production agent starts no container while the policy does not hold. */
  production?: boolean;
  /** The command that prints a line per firewall change (./ruleset-watch.ts); tests point it elsewhere. */
  monitorCommand?: readonly string[];
}

export class EgressGuard {
  private policy: EgressPolicy | undefined;
  private current: EgressState = 'unenforced';
  private installing: Promise<EgressState> | undefined;
  private readonly watch: RulesetWatch;
  /** The watch's generation when the jumps were last found in place (or installed). */
  private verifiedAt: number | undefined;

  constructor(
    private readonly settings: EgressSettings | undefined,
    private readonly deps: { docker: Docker; network: Pick<AgentNetwork, 'name' | 'info'>; logger: Logger },
  ) {
    this.watch = new RulesetWatch(deps.logger, settings?.monitorCommand);
  }

  get state(): EgressState {
    return this.current;
  }

  /** Makes the agent's network and installs the policy on its bridge; resolves with whether it holds. Never throws. */
  prepare(): Promise<EgressState> {
    const egress = this.settings;
    if (!egress) return Promise.resolve('unenforced');
    this.installing ??= (async (): Promise<EgressState> => {
      // Started before the install, whose own changes show the watch is live; it watches the
      // host's real firewall, so not when a test stands in for iptables.
      if (!egress.iptables || egress.monitorCommand) this.watch.start();
      const generation = this.watch.generation;
      try {
        const { bridge } = await this.deps.network.info();
        const swept = await sweepStaleChains(egress.iptables);
        if (swept.length > 0) this.deps.logger.info('removed egress chains of bridges that are gone', { bridges: swept });
        const policy = new EgressPolicy({ bridge, allowCidrs: [...egress.allowCidrs], logger: this.deps.logger, ...(egress.iptables ? { iptables: egress.iptables } : {}) });
        await policy.install();
        this.policy = policy;
        this.current = 'enforced';
        this.verifiedAt = generation;
      } catch (err) {
        this.current = 'unenforced';
        this.deps.logger.error('the egress policy could not be installed: containers can reach the host, the LAN and metadata services', {
          error: err instanceof Error ? err.message : String(err),
        });
      }
      return this.current;
    })().finally(() => {
      this.installing = undefined;
    });
    return this.installing;
  }

  /**
   * Before a container joins the bridge (or a pooled one is claimed): the
   * policy's jumps are still there; a production agent refuses when it cannot
   * make them so. Asks iptables only when the firewall changed since the last
   * check, or when changes are not watched.
   */
  async guard(): Promise<void> {
    if (!this.settings) return;
    const { bridge } = await this.deps.network.info();
    if (this.policy?.bridge === bridge) {
      if (this.watch.unchangedSince(this.verifiedAt)) return;
      const generation = this.watch.generation;
      if (await this.policy.jumpsInPlace()) {
        this.verifiedAt = generation;
        return;
      }
    }
    if ((await this.prepare()) !== 'enforced' && this.settings.production) {
      throw new AppError(ErrorCode.AgentUnavailable, 'this agent cannot enforce its egress policy; it starts no containers');
    }
  }

  /** Stops the firewall watch; the policy stays. */
  stopWatching(): void {
    this.watch.stop();
  }

  /** On a clean exit: the rules go, unless containers still sit on the bridge. */
  async close(): Promise<void> {
    this.stopWatching();
    const policy = this.policy;
    if (!policy) return;
    try {
      const attached = (await this.deps.docker.getNetwork(this.deps.network.name).inspect()) as { Containers?: Record<string, unknown> };
      if (Object.keys(attached.Containers ?? {}).length === 0) await policy.remove();
      else this.deps.logger.info('egress policy kept: containers are still on the bridge', { containers: Object.keys(attached.Containers ?? {}).length });
    } catch (err) {
      if (isNotFound(err)) await policy.remove().catch(() => undefined);
    }
  }
}
