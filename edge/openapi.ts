/**
 * The API described: an OpenAPI 3.1 document served at /openapi.json, built
 * from the zod schemas the routes validate with (request bodies) through
 * zod 4's own z.toJSONSchema, so there is no hand-written copy to drift. The
 * WebSocket's client messages are JSON Schemas from the same source, under
 * components.schemas (ws.<type>) and listed on GET /ws as x-websocket-messages.
 *
 * OPERATIONS is the table; a test checks that every route the app serves is
 * in it (and nothing else), and that every example parses with its schema.
 */
import { z } from 'zod';
import { LoginRequest, RegisterRequest } from '../shared/api/auth';
import { CreateContainerBody, ExecBody, PortVisibilityBody } from '../shared/api/containers';
import {
  ChangesSinceRequest,
  DeleteFileRequest,
  ListDirRequest,
  MkdirRequest,
  ReadFileRequest,
  RenameRequest,
  WatchRequest,
  WriteFileJsonBody,
  WriteFileRequest,
} from '../shared/api/files';
import * as client from '../shared/protocol/client';
import { SetPreviewScriptPayload } from '../shared/protocol/preview-script';
import { ErrorCode } from '../shared/errors';
import { RegisterAgentBody } from './routes/admin';

type Auth = 'none' | 'user' | 'operator' | 'agent' | 'user-query';

export interface Operation {
  method: 'get' | 'post' | 'put' | 'delete' | 'head';
  /** The path as the Hono app registers it (`:param`, trailing `*` for the rest of a path). */
  path: string;
  summary: string;
  tag: string;
  auth: Auth;
  /** A JSON body, validated with this schema; its example must parse. */
  body?: { name: string; schema: z.ZodType; example: unknown };
  /** A body that is not JSON (raw file bytes, a tar). */
  rawBody?: string;
  /** Status of success → what comes back. */
  ok: [number, string];
  /** Error codes worth naming (the shape is always ErrorBody). */
  errors?: string[];
  query?: Array<{ name: string; description: string; required?: boolean }>;
}

const S = (p: string) => `/api/containers/:sessionId${p}`;
const files = 'files';

export const OPERATIONS: Operation[] = [
  { method: 'get', path: '/health', summary: 'Counts and status; the full view (agents, config) with the operator token', tag: 'health', auth: 'none', ok: [200, 'status'] },
  { method: 'post', path: '/api/auth/register', summary: 'Create an account', tag: 'auth', auth: 'none', body: { name: 'RegisterRequest', schema: RegisterRequest, example: { email: 'ada@example.com', password: 'correct horse', username: 'ada' } }, ok: [201, '{message, token, user}'], errors: ['validation_failed', 'conflict', 'rate_limited'] },
  { method: 'post', path: '/api/auth/login', summary: 'Sign in', tag: 'auth', auth: 'none', body: { name: 'LoginRequest', schema: LoginRequest, example: { email: 'ada@example.com', password: 'correct horse' } }, ok: [200, '{message, token, user}'], errors: ['invalid_credentials', 'rate_limited'] },
  { method: 'get', path: '/api/auth/me', summary: 'The signed-in user', tag: 'auth', auth: 'user', ok: [200, '{user}'], errors: ['unauthorized', 'invalid_token', 'token_expired'] },
  { method: 'post', path: '/api/containers', summary: 'Create a session (container) on an agent with room', tag: 'sessions', auth: 'user', body: { name: 'CreateContainerBody', schema: CreateContainerBody, example: { image: 'node:20-bullseye', name: 'my app', env: ['NODE_ENV=development'], ports: [3000], network: 'internet' } }, ok: [201, '{session}'], errors: ['validation_failed', 'conflict', 'no_capacity', 'image_not_found', 'agent_unavailable'] },
  { method: 'get', path: '/api/containers', summary: "The caller's sessions", tag: 'sessions', auth: 'user', ok: [200, '{sessions}'] },
  { method: 'get', path: S(''), summary: 'One session, with resource figures', tag: 'sessions', auth: 'user', ok: [200, '{session}'], errors: ['forbidden', 'not_found'] },
  { method: 'delete', path: S(''), summary: 'Destroy a session (container, processes, workspace)', tag: 'sessions', auth: 'user', ok: [200, '{message, session: {id, status: "destroyed"}}'], errors: ['forbidden', 'not_found'] },
  { method: 'post', path: S('/stop'), summary: 'Stop the container, keep the workspace', tag: 'sessions', auth: 'user', ok: [200, '{session}'] },
  { method: 'post', path: S('/start'), summary: 'Start a stopped session again', tag: 'sessions', auth: 'user', ok: [200, '{session}'], errors: ['no_capacity', 'agent_unavailable'] },
  { method: 'post', path: S('/exec'), summary: 'Run a short command to completion', tag: 'processes', auth: 'user', body: { name: 'ExecBody', schema: ExecBody, example: { command: 'npm', args: ['--version'], cwd: '/workspace', timeoutMs: 30000 } }, ok: [200, '{exitCode, signal?, reason, stdout, stderr, durationMs, truncated}'], errors: ['validation_failed', 'timeout'] },
  { method: 'get', path: S('/files'), summary: 'List the workspace root', tag: files, auth: 'user', ok: [200, '{path, entries}'] },
  { method: 'get', path: S('/files/*'), summary: "A file's bytes, or a folder's listing", tag: files, auth: 'user', ok: [200, 'the bytes (ETag, Content-Type), or {path, entries}'], errors: ['invalid_path', 'path_outside_workspace', 'not_found'] },
  { method: 'head', path: S('/files/*'), summary: 'Stat in headers (X-File-Type, X-File-Mode, Content-Length, ETag)', tag: files, auth: 'user', ok: [200, 'headers only'] },
  { method: 'put', path: S('/files/*'), summary: 'Write a file: JSON {content, encoding?} or any other type as the raw body', tag: files, auth: 'user', body: { name: 'WriteFileJsonBody', schema: WriteFileJsonBody, example: { content: 'console.log("hi")\n', encoding: 'utf8' } }, rawBody: 'application/octet-stream', query: [{ name: 'parents', description: '1: create missing folders' }], ok: [200, '{path, size, mtime, etag}'], errors: ['payload_too_large', 'invalid_path'] },
  { method: 'delete', path: S('/files/*'), summary: 'Delete a file or folder', tag: files, auth: 'user', query: [{ name: 'recursive', description: '1: a folder with contents' }], ok: [200, '{path}'], errors: ['conflict', 'not_found'] },
  { method: 'post', path: S('/mkdir'), summary: 'Make a folder', tag: files, auth: 'user', body: { name: 'MkdirRequest', schema: MkdirRequest, example: { path: 'src/components', recursive: true } }, ok: [200, '{path}'] },
  { method: 'post', path: S('/rename'), summary: 'Rename or move', tag: files, auth: 'user', body: { name: 'RenameRequest', schema: RenameRequest, example: { from: 'a.txt', to: 'docs/a.txt' } }, ok: [200, '{from, to}'] },
  { method: 'get', path: S('/tar'), summary: 'The workspace as a tar', tag: files, auth: 'user', ok: [200, 'application/x-tar'] },
  { method: 'get', path: S('/tar/*'), summary: 'A folder as a tar', tag: files, auth: 'user', ok: [200, 'application/x-tar'] },
  { method: 'put', path: S('/tar'), summary: 'Unpack a tar (or .tar.gz) into the workspace', tag: files, auth: 'user', rawBody: 'application/x-tar', ok: [200, '{entries, bytes}'], errors: ['invalid_path'] },
  { method: 'put', path: S('/tar/*'), summary: 'Unpack a tar (or .tar.gz) into a folder', tag: files, auth: 'user', rawBody: 'application/x-tar', ok: [200, '{entries, bytes}'], errors: ['invalid_path'] },
  { method: 'get', path: S('/preview-url'), summary: 'Short-lived signed preview links (host and path forms)', tag: 'preview', auth: 'user', query: [{ name: 'port', description: 'the port (default: the preview port)' }], ok: [200, '{url, pathUrl, expiresIn}'] },
  { method: 'post', path: S('/ports/:port'), summary: 'Make a port public or private', tag: 'preview', auth: 'user', body: { name: 'PortVisibilityBody', schema: PortVisibilityBody, example: { visibility: 'public' } }, ok: [200, '{session, port, visibility}'] },
  { method: 'get', path: '/ws', summary: 'The session WebSocket (upgrade); messages under x-websocket-messages', tag: 'websocket', auth: 'user-query', query: [{ name: 'token', description: 'the user token', required: true }, { name: 'sessionId', description: 'the session (optional when the user has one)' }, { name: 'output', description: 'text (default) or binary' }], ok: [101, 'Switching Protocols'], errors: ['unauthorized', 'bad_request'] },
  { method: 'get', path: '/agent/connect', summary: "An agent's control socket (upgrade)", tag: 'agents', auth: 'agent', ok: [101, 'Switching Protocols'], errors: ['invalid_token', 'unsupported_version'] },
  { method: 'get', path: '/agent/sessions/:sessionId', summary: "An agent's data socket for one session (upgrade)", tag: 'agents', auth: 'agent', ok: [101, 'Switching Protocols'], errors: ['forbidden', 'not_found'] },
  { method: 'get', path: '/api/admin/agents', summary: 'Registered agents with their load', tag: 'admin', auth: 'operator', ok: [200, '{agents}'] },
  { method: 'post', path: '/api/admin/agents', summary: 'Register an agent (or renew one by id) and get its join token', tag: 'admin', auth: 'operator', body: { name: 'RegisterAgentBody', schema: RegisterAgentBody, example: { name: 'box1', ttl: '90d' } }, ok: [201, '{agent, token}'] },
  { method: 'post', path: '/api/admin/agents/:idOrName/revoke', summary: 'Revoke an agent (by id, or every agent of a name)', tag: 'admin', auth: 'operator', ok: [200, '{revoked}'] },
  { method: 'post', path: '/api/admin/agents/:agentId/drain', summary: 'Stop new placements on an agent; its sessions keep running', tag: 'admin', auth: 'operator', ok: [200, '{agent}'] },
  { method: 'post', path: '/api/admin/agents/:agentId/undrain', summary: 'Place sessions on the agent again', tag: 'admin', auth: 'operator', ok: [200, '{agent}'] },
  { method: 'get', path: '/openapi.json', summary: 'This document', tag: 'health', auth: 'none', ok: [200, 'OpenAPI 3.1'] },
];

/** Client → server WebSocket messages: frame type → payload schema, and an example payload. */
export const WS_MESSAGES: Record<string, { schema: z.ZodType; example: unknown }> = {
  container_command: { schema: client.ContainerCommandPayload, example: { command: 'npm run dev' } },
  exec_command: { schema: client.ExecCommandPayload, example: { command: 'node', args: ['-v'] } },
  open_terminal: { schema: client.OpenTerminalPayload, example: { cols: 120, rows: 30 } },
  stdin: { schema: client.StdinPayload, example: { processId: 'prc_0123456789abcdef', data: 'ls\n' } },
  resize: { schema: client.ResizePayload, example: { processId: 'prc_0123456789abcdef', cols: 100, rows: 40 } },
  kill: { schema: client.KillPayload, example: { processId: 'prc_0123456789abcdef', signal: 'SIGINT' } },
  resume: { schema: client.ResumePayload, example: { processId: 'prc_0123456789abcdef', fromOffset: 4096, stream: 'stdout' } },
  ack: { schema: client.AckPayload, example: { processId: 'prc_0123456789abcdef', stream: 'stdout', offset: 1048576 } },
  start_preview: { schema: client.StartPreviewPayload, example: { port: 5173 } },
  history: { schema: client.HistoryPayload, example: { limit: 50 } },
  set_preview_script: { schema: SetPreviewScriptPayload, example: { script: { source: 'console.log("hi")', type: 'module' }, forwardErrors: true } },
  read_file: { schema: ReadFileRequest, example: { path: 'package.json' } },
  write_file: { schema: WriteFileRequest, example: { path: 'src/index.js', content: 'export {}\n' } },
  list_dir: { schema: ListDirRequest, example: { path: '.' } },
  mkdir: { schema: MkdirRequest, example: { path: 'src', recursive: true } },
  delete_file: { schema: DeleteFileRequest, example: { path: 'old.txt' } },
  rename: { schema: RenameRequest, example: { from: 'a.txt', to: 'b.txt' } },
  watch: { schema: WatchRequest, example: { path: '.', recursive: true } },
  changes_since: { schema: ChangesSinceRequest, example: { version: 12 } },
};

/** The one error shape, with every code the edge uses. */
const ErrorBody = z.object({
  error: z.object({
    code: z.enum(Object.values(ErrorCode) as [string, ...string[]]),
    message: z.string(),
    details: z.unknown().optional(),
  }),
});

/** JSON Schema (2020-12, what OpenAPI 3.1 uses) for what a schema accepts. */
function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

/** `/api/containers/:sessionId/files/*` → `/api/containers/{sessionId}/files/{path}`. */
export function openApiPath(honoPath: string): string {
  return honoPath.replace(/:(\w+)/g, '{$1}').replace(/\/\*$/, '/{path}');
}

const SECURITY: Record<Auth, Array<Record<string, string[]>>> = {
  none: [],
  user: [{ userToken: [] }],
  operator: [{ operatorToken: [] }],
  agent: [{ agentToken: [] }],
  'user-query': [],
};

let cached: Record<string, unknown> | undefined;

export function openApiDocument(): Record<string, unknown> {
  if (cached) return cached;
  const schemas: Record<string, unknown> = { ErrorBody: jsonSchema(ErrorBody), ClientFrame: jsonSchema(client.ClientFrame) };
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of OPERATIONS) {
    const p = openApiPath(op.path);
    const parameters = [
      ...[...p.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } })),
      ...(op.query ?? []).map((q) => ({ name: q.name, in: 'query', required: q.required ?? false, description: q.description, schema: { type: 'string' } })),
    ];
    const content: Record<string, unknown> = {};
    if (op.body) {
      schemas[op.body.name] = jsonSchema(op.body.schema);
      content['application/json'] = { schema: { $ref: `#/components/schemas/${op.body.name}` }, example: op.body.example };
    }
    if (op.rawBody) content[op.rawBody] = { schema: { type: 'string', contentMediaType: op.rawBody } };
    const errors = Object.fromEntries(
      [...new Set(op.errors ?? [])].map((code) => [
        code,
        { $ref: '#/components/responses/Error' },
      ]),
    );
    paths[p] ??= {};
    paths[p][op.method] = {
      operationId: `${op.method}${p.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(\w)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
      summary: op.summary,
      tags: [op.tag],
      security: SECURITY[op.auth],
      ...(parameters.length ? { parameters } : {}),
      ...(Object.keys(content).length ? { requestBody: { required: true, content } } : {}),
      responses: { [String(op.ok[0])]: { description: op.ok[1] }, default: { $ref: '#/components/responses/Error' } },
      ...(Object.keys(errors).length ? { 'x-error-codes': Object.keys(errors) } : {}),
    };
  }
  for (const [type, m] of Object.entries(WS_MESSAGES)) schemas[`ws.${type}`] = jsonSchema(m.schema);
  paths['/ws']!.get = {
    ...(paths['/ws']!.get as Record<string, unknown>),
    'x-websocket-messages': Object.fromEntries(
      Object.entries(WS_MESSAGES).map(([type, m]) => [type, { payload: { $ref: `#/components/schemas/ws.${type}` }, example: { type, id: 1, payload: m.example } }]),
    ),
  };
  cached = {
    openapi: '3.1.0',
    info: {
      title: 'MominAI edge API',
      version: '1',
      license: { name: 'MIT', identifier: 'MIT' },
      description: 'REST and WebSocket API of the MominAI edge. Every error is {"error": {"code", "message", "details"?}}.',
    },
    paths,
    components: {
      schemas,
      responses: { Error: { description: 'An error (status per code; see the README)', content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorBody' } } } } },
      securitySchemes: {
        userToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'a user token from register or login' },
        operatorToken: { type: 'http', scheme: 'bearer', description: 'OPERATOR_TOKEN' },
        agentToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'an agent join token' },
      },
    },
  };
  return cached;
}
