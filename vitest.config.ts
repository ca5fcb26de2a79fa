import { defineConfig } from 'vitest/config';

// Unit suites are fast and run in parallel; suites that start real processes
// (workerd, agents, dockerd containers) live in test/e2e and wait for events
// with generous limits, since CI machines have two slow cores.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
    sequence: { hooks: 'stack' },
    // Agents the suites start inherit this: the locally built test images next to the default node:*.
    env: { ALLOWED_IMAGES: 'node:*,mominai/*' },
  },
});
