/**
 * RateLimiterDO: one instance per client key (the client's IP, see
 * ../ratelimit/client-ip.ts), so each client's requests are counted in one
 * place, one at a time, whichever edge location serves them. The counting is
 * in ../ratelimit/window.ts; this class loads, saves and cleans up: an
 * alarm at the end of each window deletes the closed ones, so a client that
 * has gone quiet leaves nothing behind but an empty table.
 */
import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../env';
import { WindowStore } from '../ratelimit/store';
import { consume, type Decision, type RateLimitRule } from '../ratelimit/window';

export interface ConsumeReply {
  allowed: boolean;
  decisions: Decision[];
  /** The DO's clock when it decided; headers count down from it. */
  now: number;
}

export class RateLimiterDO extends DurableObject<Env> {
  private readonly store: WindowStore;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new WindowStore(ctx.storage.sql);
  }

  /** RPC: spends one request from each rule's bucket (or none, when any is full). */
  async consume(rules: RateLimitRule[]): Promise<ConsumeReply> {
    const now = Date.now();
    const result = consume(rules, this.store.load(rules.map((r) => r.bucket)), now);
    for (const [i, rule] of rules.entries()) {
      const state = result.states.get(rule.bucket);
      if (state) this.store.save(rule.bucket, state, result.decisions[i]!.resetAt);
    }
    if ((await this.ctx.storage.getAlarm()) === null) {
      await this.ctx.storage.setAlarm(Math.min(...result.decisions.map((d) => d.resetAt)));
    }
    return { allowed: result.allowed, decisions: result.decisions, now };
  }

  override async alarm(): Promise<void> {
    const next = this.store.prune(Date.now());
    if (next !== null) await this.ctx.storage.setAlarm(next);
  }
}
