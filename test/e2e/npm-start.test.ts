/**
 * `npm start` exactly as a newcomer runs it: one command, edge and agent up,
 * and both gone (no orphan workerd) after SIGTERM.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, waitForHealth } from '../../scripts/lib/stack';
import { hasDocker } from '../helpers/docker';
import { freePort } from '../helpers/stack';

function processesMentioning(text: string): string[] {
  const out = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes(text) && !l.includes('ps -eo'));
}

describe('npm start', () => {
  let port = 0;
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mominai-start-'));
  afterAll(() => fs.rmSync(stateDir, { recursive: true, force: true }));

  it('brings up the edge and one agent within 20 s, and stops both on SIGTERM', async () => {
    port = await freePort();
    const child = spawn('npm', ['start'], {
      cwd: ROOT,
      env: { ...process.env, PORT: String(port), STATE_DIR: stateDir, AGENT_NAME: 'npm-start-test' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const started = Date.now();
      // npm start writes the development operator token into STATE_DIR before it starts the edge.
      const secretsFile = path.join(stateDir, 'secrets.json');
      while (!fs.existsSync(secretsFile) && Date.now() - started < 30_000) await new Promise((r) => setTimeout(r, 50));
      const operatorToken = String((JSON.parse(fs.readFileSync(secretsFile, 'utf8')) as Record<string, unknown>).OPERATOR_TOKEN);
      expect(operatorToken).toMatch(/^dev-/);
      const h = await waitForHealth(`http://127.0.0.1:${port}`, (x) => x.agents.some((a) => a.connected), { timeoutMs: 60_000, operatorToken });
      const elapsed = Date.now() - started;
      expect(h.status).toBe('ok');
      expect(h.agents).toHaveLength(1);
      expect(h.agents[0]).toMatchObject({ name: 'npm-start-test', connected: true, mode: hasDocker ? 'docker' : 'local' });
      // The target is 20 s on an idle machine (measured about 4-5 s); the bound here leaves room for a loaded CI box.
      process.stderr.write(`[npm-start] edge and agent ready in ${elapsed} ms\n`);
      expect(elapsed).toBeLessThan(45_000);
      // Development secrets were generated into STATE_DIR, not into the repository.
      expect(fs.existsSync(path.join(stateDir, 'secrets.json'))).toBe(true);
      expect(processesMentioning(stateDir).length).toBeGreaterThan(0);
      expect(processesMentioning(`127.0.0.1:${port}`).some((l) => l.includes('workerd'))).toBe(true);
      // npm start says it is ready (URLs and the agent's mode) once it sees the agent itself.
      const readyBy = Date.now() + 30_000;
      while (!output.includes('"msg":"ready"') && Date.now() < readyBy) await new Promise((r) => setTimeout(r, 50));
      expect(output).toContain('"msg":"ready"');
      expect(output).toContain(`(${hasDocker ? 'docker' : 'local'} mode`);
      // The agent is registered in the edge's D1, with an expiry 90 days out, under the id kept in STATE_DIR.
      const keptId = (JSON.parse(fs.readFileSync(path.join(stateDir, 'agent.json'), 'utf8')) as { id: string }).id;
      const admin = await fetch(`http://127.0.0.1:${port}/api/admin/agents`, { headers: { Authorization: `Bearer ${operatorToken}` } });
      const { agents } = (await admin.json()) as { agents: Array<{ id: string; name: string; expiresAt: string; revokedAt: string | null; connected: boolean }> };
      expect(agents).toHaveLength(1);
      expect(agents[0]).toMatchObject({ id: keptId, name: 'npm-start-test', revokedAt: null, connected: true });
      expect(Math.round((Date.parse(agents[0]!.expiresAt) - Date.now()) / 86_400_000)).toBe(90);
      // Anyone else sees counts only.
      const quiet = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { agents: unknown[]; system: { agentsConnected: number } };
      expect(quiet.agents).toEqual([]);
      expect(quiet.system.agentsConnected).toBe(1);
    } finally {
      child.kill('SIGTERM');
      const code = await exited;
      expect(code).toBe(0);
    }
    // Nothing it started is left: no wrangler, no workerd, no agent for this STATE_DIR.
    // workerd's own command line names the port, not the state folder.
    const leftovers = () => [...processesMentioning(stateDir), ...processesMentioning(`127.0.0.1:${port}`)];
    const deadline = Date.now() + 10_000;
    while (leftovers().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(leftovers()).toEqual([]);
  });
});
