/** Worker entry: the HTTP app and the Durable Object classes. */
import { createApp } from './app';

export { FleetDO } from './do/fleet';
export { SessionDO } from './do/session';
export { RateLimiterDO } from './do/rate-limiter';

export default createApp();
