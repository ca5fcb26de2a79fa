/**
 * Whether Docker-dependent suites run. Where no engine answers they skip, except
 * under REQUIRE_DOCKER=1 (CI), where a missing engine is a failure.
 */
import Docker from 'dockerode';

export const requireDocker = process.env.REQUIRE_DOCKER === '1';

export async function dockerAvailable(): Promise<boolean> {
  try {
    await new Docker().ping();
    return true;
  } catch (err) {
    if (requireDocker) throw new Error(`REQUIRE_DOCKER=1 but the Docker engine does not answer: ${String(err)}`);
    return false;
  }
}

/** Evaluated once at import time so `describe.skipIf` can use it. */
export const hasDocker: boolean = await dockerAvailable();
