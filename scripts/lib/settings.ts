/**
 * Which environment variables `npm start` hands to the edge (as Worker vars);
 * every other setting goes to the agent process through its environment.
 * The README's configuration table lists each with its default.
 */
export const EDGE_SETTINGS = [
  'NODE_ENV',
  'LOG_LEVEL',
  'DEBUG',
  'HEARTBEAT_INTERVAL_MS',
  'JWT_TTL',
  'RATE_LIMIT_MAX',
  'RATE_LIMIT_WINDOW_MS',
  'AUTH_RATE_LIMIT_MAX',
  'AUTH_RATE_LIMIT_WINDOW_MS',
  'TRUST_PROXY',
  'CORS_ORIGINS',
  'MAX_BODY_BYTES',
  'DEFAULT_IMAGE',
  'MAX_SESSIONS_PER_USER',
  'SESSION_IDLE_TIMEOUT',
  'PREVIEW_DOMAIN',
  'PREVIEW_LINK_TTL',
  'PREVIEW_COOKIE_TTL',
  'PREVIEW_PATH_FORM',
  'MAX_FILE_SIZE',
  'AGENT_MAX_SESSIONS',
  'ALLOW_LOCAL_AGENTS',
] as const;
