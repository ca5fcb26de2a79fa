/**
 * /openapi.json: generated from the routes' zod schemas, covering exactly the
 * routes the app serves, with examples that the schemas accept.
 */
import { describe, expect, it } from 'vitest';
import { createApp } from '../../edge/app';
import { OPERATIONS, WS_MESSAGES, openApiDocument, openApiPath } from '../../edge/openapi';

const doc = openApiDocument() as {
  openapi: string;
  paths: Record<string, Record<string, { 'x-websocket-messages'?: Record<string, { example: { type: string; payload: unknown } }> }>>;
  components: { schemas: Record<string, unknown> };
};

/** method + OpenAPI path of every handler the app registers (middleware, registered for ALL, left out). */
function servedRoutes(): string[] {
  const seen = new Set<string>();
  for (const r of createApp().routes) {
    if (r.method === 'ALL') continue;
    seen.add(`${r.method.toLowerCase()} ${openApiPath(r.path)}`);
  }
  return [...seen].sort();
}

describe('OpenAPI document', () => {
  it('is OpenAPI 3.1 and lists exactly the routes the app serves', () => {
    expect(doc.openapi).toBe('3.1.0');
    const documented = Object.entries(doc.paths)
      .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`))
      .sort();
    expect(documented).toEqual(servedRoutes());
  });

  it('has a request example for every JSON body, and each parses with the schema the route uses', () => {
    const bad = OPERATIONS.filter((op) => op.body && !op.body.schema.safeParse(op.body.example).success).map((op) => `${op.method} ${op.path}`);
    expect(bad).toEqual([]);
    expect(OPERATIONS.filter((op) => op.body).length).toBe(9);
  });

  it('describes every client WebSocket message as a JSON Schema, with an example its schema accepts', () => {
    const messages = doc.paths['/ws']!.get!['x-websocket-messages']!;
    expect(Object.keys(messages).sort()).toEqual(Object.keys(WS_MESSAGES).sort());
    for (const [type, m] of Object.entries(messages)) {
      expect(doc.components.schemas[`ws.${type}`], type).toMatchObject({ type: 'object' });
      expect(m.example.type).toBe(type);
      expect(WS_MESSAGES[type]!.schema.safeParse(m.example.payload).success, type).toBe(true);
    }
  });

  it('resolves every $ref inside the document', () => {
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(20);
    const missing = refs.filter((ref) => ref.split('/').reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], doc) === undefined);
    expect(missing).toEqual([]);
  });

  it('keeps the example schemas strict where the routes are: an unknown field in a create body is refused', () => {
    const create = OPERATIONS.find((op) => op.path === '/api/containers' && op.method === 'post')!;
    expect(create.body!.schema.safeParse({ ...(create.body!.example as object), privileged: true }).success).toBe(false);
    expect(doc.components.schemas.CreateContainerBody).toMatchObject({ additionalProperties: false });
  });

  it('is served at GET /openapi.json', async () => {
    const env = { JWT_SECRET: 'j'.repeat(40), AGENT_SECRET: 'a'.repeat(40), NODE_ENV: 'development' };
    const res = await createApp().request('/openapi.json', {}, env);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual(JSON.parse(JSON.stringify(doc)));
  });
});
