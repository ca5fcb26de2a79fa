/**
 * A network namespace the test makes itself, standing in for the world a
 * container must (or must not) reach: a veth pair into it, the addresses the
 * test names put on its loopback, host routes to them through the veth, and a
 * TCP listener per address that answers "hello from <address>". Nothing
 * leaves this machine; `destroy()` removes the namespace, routes and listener.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

async function sh(cmd: string, args: string[]): Promise<string> {
  const { stdout } = await run(cmd, args, { timeout: 10_000 });
  return stdout;
}

export async function canMakeNamespaces(): Promise<boolean> {
  try {
    await sh('ip', ['netns', 'list']);
    await sh('iptables', ['-w', '5', '-S', 'DOCKER-USER']);
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
}

export interface FakeWorld {
  name: string;
  addresses: string[];
  port: number;
  destroy(): Promise<void>;
}

/**
 * `tag` keeps names apart from parallel runs (≤ 6 characters); `link` is a /30
 * index (0-63) for the veth addresses 169.254.214.(4·link+1, +2).
 */
export async function makeWorld(tag: string, link: number, addresses: string[], port: number): Promise<FakeWorld> {
  const name = `m14-${tag}`;
  const hostIf = `m14h${tag}`;
  const nsIf = `m14n${tag}`;
  const hostAddr = `169.254.214.${4 * link + 1}`;
  const nsAddr = `169.254.214.${4 * link + 2}`;
  let server: ChildProcess | undefined;
  const destroy = async () => {
    server?.kill('SIGKILL');
    for (const a of addresses) await sh('ip', ['route', 'del', `${a}/32`]).catch(() => undefined);
    await sh('ip', ['link', 'del', hostIf]).catch(() => undefined);
    await sh('ip', ['netns', 'del', name]).catch(() => undefined);
  };
  await destroy();
  try {
    await sh('ip', ['netns', 'add', name]);
    await sh('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf]);
    await sh('ip', ['link', 'set', nsIf, 'netns', name]);
    await sh('ip', ['addr', 'add', `${hostAddr}/30`, 'dev', hostIf]);
    await sh('ip', ['link', 'set', hostIf, 'up']);
    const inNs = (...args: string[]) => sh('ip', ['netns', 'exec', name, ...args]);
    await inNs('ip', 'addr', 'add', `${nsAddr}/30`, 'dev', nsIf);
    await inNs('ip', 'link', 'set', nsIf, 'up');
    await inNs('ip', 'link', 'set', 'lo', 'up');
    await inNs('ip', 'route', 'add', 'default', 'via', hostAddr);
    for (const a of addresses) {
      await inNs('ip', 'addr', 'add', `${a}/32`, 'dev', 'lo');
      await sh('ip', ['route', 'add', `${a}/32`, 'via', nsAddr, 'dev', hostIf]);
    }
    // One node process in the namespace listens on every address.
    const script = `
      const net = require('net');
      const addrs = ${JSON.stringify(addresses)};
      let n = 0;
      for (const a of addrs) net.createServer((s) => s.end('hello from ' + a + '\\n')).listen(${port}, a, () => { if (++n === addrs.length) console.log('ready'); });
    `;
    server = spawn('ip', ['netns', 'exec', name, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('namespace listeners did not start')), 10_000);
      server!.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      server!.on('exit', (code) => reject(new Error(`namespace listener exited (${code})`)));
    });
  } catch (err) {
    await destroy();
    throw err;
  }
  return { name, addresses, port, destroy };
}
