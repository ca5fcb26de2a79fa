/**
 * The REST helpers live in ./client.ts (the one client of tests and
 * benchmarks); this name stays for the SDK suites under test/client that
 * import it.
 */
export { call, median, newAccount, type ApiResponse, type AuthBody, type ErrorBody, type RequestOptions } from './client';
