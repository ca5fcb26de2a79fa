/**
 * Worker storage types that edge modules under test/edge/fleet use, for the
 * Node type-check (which has no Worker globals): D1 (run against Miniflare's
 * local D1) and Durable Object SQLite storage (fakes at the seam).
 */
type D1Database = import('@cloudflare/workers-types/experimental').D1Database;
type SqlStorage = import('@cloudflare/workers-types/experimental').SqlStorage;
type SqlStorageValue = import('@cloudflare/workers-types/experimental').SqlStorageValue;
