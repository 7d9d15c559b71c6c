// Which batch test/run.mjs is running, so that helpers only integration tests may use refuse to run among unit tests.

/** Set by test/run.mjs to "unit" for the unit batch (concurrent, any user) and "integration" for the rest. */
export const BATCH_ENV = 'DROPWATCH_TEST_BATCH';

/**
 * Throws in the unit batch: a test that reaches `what` needs root, the kernel, the built CLI or the qemu guest, so
 * its file must be named *.int.test.ts to run alone with the integration tests.
 */
export function integrationOnly(what: string): void {
  if (process.env[BATCH_ENV] === 'unit')
    throw new Error(`${what} is for integration tests only: name this test file *.int.test.ts (see test/run.mjs)`);
}
