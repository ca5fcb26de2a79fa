import { defineConfig } from 'vitest/config';

// Unit suites are fast and run in parallel; suites that start real processes
// (workerd, agents, dockerd containers) live in test/e2e and wait for events
// with generous limits, since CI machines have two slow cores.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    // Known defect, not a policy: under the full suite on two cores, the stalled-client flow-control e2e
    // lost its socket or its gap in 2 of 3 fresh-clone CI runs (it passes alone). Until that is found,
    // CI retries a failed test once; a run that needed it prints the retry in vitest's output.
    retry: process.env.CI ? 1 : 0,
    hookTimeout: 120_000,
    // A failed test prints what its stack's edge and agents warned of (test/helpers/failure-digest.ts).
    setupFiles: ['test/helpers/failure-digest.ts'],
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
    sequence: { hooks: 'stack' },
    // Agents the suites start inherit this: the locally built test images next to the default node:*.
    env: { ALLOWED_IMAGES: 'node:*,mominai/*' },
  },
});
