/**
 * The WebContainer facade against the real stack (workerd edge, agent,
 * dockerd, the node test image): the flow of StackBlitz's WebContainer
 * tutorial with a local server instead of npm packages, jsh's OSC markers,
 * Node-style errors and internal.watchPaths.
 */
import http from 'node:http';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MominaiClient } from '@mominai/client';
import { FsError, PreviewMessageType, WebContainer, type FileSystemTree, type PathWatcherEvent, type PreviewMessage } from '@mominai/client/webcontainer';
import { newAccount } from '../helpers/api-client';
import { hasDocker } from '../helpers/docker';
import type { TestStack } from '../helpers/stack';
import { startStack, waitFor } from './setup';

/** GET through the edge the way a browser would open `url` (any host resolves to the edge here), keeping cookies. */
function browserGet(edgePort: number, url: string, cookie = ''): Promise<{ status: number; location?: string; setCookie?: string; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: edgePort, path: u.pathname + u.search, headers: { Host: u.host, ...(cookie ? { Cookie: cookie } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          ...(res.headers.location ? { location: res.headers.location } : {}),
          ...(res.headers['set-cookie']?.[0] ? { setCookie: res.headers['set-cookie'][0].split(';')[0]! } : {}),
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** POST through the edge as a page on `url`'s origin would (its Origin, the preview cookie). */
function browserPost(edgePort: number, url: string, cookie: string, body: string): Promise<number> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: edgePort, path: u.pathname, method: 'POST', headers: { Host: u.host, Origin: u.origin, Cookie: cookie, 'Content-Type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Collects a process's text output and resolves when it matches. */
function collector(output: ReadableStream<string>) {
  let text = '';
  const waiters = new Set<() => void>();
  void output.pipeTo(
    new WritableStream({
      write(chunk) {
        text += chunk;
        for (const w of [...waiters]) w();
      },
    }),
  );
  return {
    get text() {
      return text;
    },
    until(pred: (t: string) => boolean, timeoutMs = 60_000): Promise<string> {
      return waitFor<string>((l) => {
        const w = () => l(text);
        waiters.add(w);
        queueMicrotask(w);
        return () => waiters.delete(w);
      }, pred, timeoutMs, 'process output');
    },
  };
}

const SERVER = `
const http = require('http');
const fs = require('fs');
http.createServer((req, res) => {
  res.setHeader('Content-Type', 'text/html');
  res.end(fs.readFileSync(__dirname + '/index.html'));
}).listen(3000, '0.0.0.0', () => console.log('listening on 3000'));
`;

describe.skipIf(!hasDocker)('WebContainer facade (real stack, Docker)', () => {
  let stack: TestStack;
  let token: string;
  let wc: WebContainer;

  beforeAll(async () => {
    stack = await startStack('node', 'wc-agent');
    const client = new MominaiClient({ baseUrl: stack.baseUrl });
    token = (await client.register(newAccount('wc'))).token;
    wc = await WebContainer.boot({ apiUrl: stack.baseUrl, token, WebSocket: WebSocket as never });
  });
  afterAll(async () => {
    if (wc) {
      wc.teardown();
      await wc.tornDown;
    }
    await stack?.stop();
  }, 180_000);

  it('mounts an app, serves it on server-ready, and shows an fs.writeFile on the next GET', async () => {
    const files: FileSystemTree = {
      'server.js': { file: { contents: SERVER } },
      'index.html': { file: { contents: '<h1>version one</h1>' } },
      'package.json': { file: { contents: new TextEncoder().encode('{"name":"example-app"}') } },
      src: { directory: { 'main.js': { file: { contents: 'export {}' } } } },
      'entry.js': { file: { symlink: 'src/main.js' } },
    };
    await wc.mount(files);
    expect(await wc.fs.readFile('/package.json', 'utf-8')).toBe('{"name":"example-app"}');
    expect((await wc.fs.readdir('/src')).sort()).toEqual(['main.js']);
    const ready = waitFor<{ port: number; url: string }>((l) => wc.on('server-ready', (port, url) => l({ port, url })), (r) => r.port === 3000, 60_000, 'server-ready');
    const server = await wc.spawn('node', ['server.js']);
    const { url } = await ready;
    // The URL opens as it is: a signed link that sets the preview cookie and lands on the clean URL.
    const landing = await browserGet(stack.port, url);
    expect(landing.status).toBe(302);
    expect(landing.setCookie).toBeDefined();
    const clean = new URL(landing.location!, url).toString();
    expect((await browserGet(stack.port, clean, landing.setCookie)).body).toBe('<h1>version one</h1>');
    await wc.fs.writeFile('/index.html', '<h1>version two</h1>');
    expect((await browserGet(stack.port, clean, landing.setCookie)).body).toBe('<h1>version two</h1>');
    server.kill();
    expect(await server.exit).not.toBe(0);
  }, 180_000);

  it('runs jsh --osc in a terminal: interactive, then exit=<pid>:0 after echo hi, keystrokes in and answers out, kill ends it', async () => {
    const shell = await wc.spawn('/bin/jsh', ['--osc'], { terminal: { cols: 80, rows: 24 } });
    const out = collector(shell.output);
    await out.until((t) => t.includes('\x1b]654;interactive\x07'));
    await out.until((t) => t.includes('\x1b]654;prompt\x07'));
    const input = shell.input.getWriter();
    await input.write('echo hi\n');
    const after = await out.until((t) => /\x1b\]654;exit=\d+:0\x07/.test(t));
    expect(after).toMatch(/\r\nhi\r\n/);
    expect(after.indexOf('\x1b]654;interactive\x07')).toBeLessThan(after.search(/\x1b\]654;exit=/));
    // The marker is exit=<shell pid>:<code>: bolt.new and bolt.diy read the code as the number after the colon.
    await input.write('echo "pid=$$"\n');
    // Waits for that command's own exit marker too, so the next marker read is the one of `false`.
    const pid = (await out.until((t) => /\r\npid=\d+\r\n[\s\S]*\x1b\]654;exit=\d+:0\x07/.test(t))).match(/\r\npid=(\d+)\r\n/)![1]!;
    const mark = out.text.length;
    await input.write('false\n');
    const failed = (await out.until((t) => /\x1b\]654;exit=\d+:1\x07/.test(t.slice(mark)))).slice(mark);
    expect(failed).toContain(`\x1b]654;exit=${pid}:1\x07`);
    const [, osc, , , code] = failed.match(/\x1b\]654;([^\x07=]+)=?((-?\d+):(\d+))?\x07/) ?? [];
    expect([osc, Number(code)]).toEqual(['exit', 1]);
    await input.write('exit 3\n');
    expect(await shell.exit).toBe(3);
    const second = await wc.spawn('jsh', ['--osc'], { terminal: { cols: 80, rows: 24 } });
    const out2 = collector(second.output);
    await out2.until((t) => t.includes('\x1b]654;prompt\x07'));
    second.kill();
    expect(await second.exit).not.toBe(0);
  }, 180_000);

  it('fails like Node for a missing file, an existing folder and a non-empty folder', async () => {
    const missing = await wc.fs.readFile('/no/such/file.txt').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(FsError);
    expect(missing).toMatchObject({ code: 'ENOENT', syscall: 'open', path: '/no/such/file.txt' });
    await wc.fs.mkdir('/made');
    await expect(wc.fs.mkdir('/made')).rejects.toMatchObject({ code: 'EEXIST' });
    expect(await wc.fs.mkdir('/made/deep/er', { recursive: true })).toBe('/made/deep/er');
    await expect(wc.fs.rm('/made')).rejects.toMatchObject({ code: 'ENOTEMPTY' });
    await expect(wc.fs.rm('/not-there')).rejects.toMatchObject({ code: 'ENOENT' });
    await wc.fs.rm('/not-there', { force: true });
    await wc.fs.rm('/made', { recursive: true });
    await expect(wc.fs.readdir('/made')).rejects.toMatchObject({ code: 'ENOENT' });
  }, 180_000);

  it('reports through internal.watchPaths a file a command wrote, with its content, and leaves out node_modules during a 1,000-file burst', async () => {
    const events: PathWatcherEvent[] = [];
    const notify = new Set<() => void>();
    const stop = wc.internal.watchPaths({ include: [`${wc.workdir}/**`], exclude: ['**/node_modules', '.git'], includeContent: true }, (batch) => {
      events.push(...batch);
      for (const n of notify) n();
    });
    await stop.ready;
    // What the connection receives, before the globs: proves the burst did reach the client and was left out by the filter.
    let modulesChanges = 0;
    const offRaw = wc.connection.on('file-change', (c) => {
      if (c.path.includes('/node_modules/')) modulesChanges += 1;
    });
    const seen = waitFor<PathWatcherEvent[]>((l) => {
      const n = () => l(events);
      notify.add(n);
      return () => notify.delete(n);
    }, (list) => list.some((e) => e.path === '/workspace/done.txt' && e.buffer !== undefined), 90_000, 'done.txt in watchPaths');
    seen.catch(() => undefined); // awaited below; this keeps an earlier failure from leaving it unhandled
    const burst = await wc.spawn('node', ['-e', `
      const fs = require('fs');
      fs.mkdirSync('node_modules/pkg', { recursive: true });
      for (let i = 0; i < 1000; i++) fs.writeFileSync('node_modules/pkg/f' + i + '.js', 'module.exports = ' + i);
      fs.writeFileSync('done.txt', 'burst finished\\n');
    `]);
    expect(await burst.exit).toBe(0);
    const list = await seen;
    stop();
    offRaw();
    expect(modulesChanges).toBeGreaterThan(0);
    const done = list.find((e) => e.path === '/workspace/done.txt' && e.buffer)!;
    expect(new TextDecoder().decode(done.buffer)).toBe('burst finished\n');
    expect(list.filter((e) => e.path.includes('node_modules'))).toEqual([]);
  }, 180_000);

  it('exports a folder as a FileSystemTree', async () => {
    await wc.fs.mkdir('/exp/sub', { recursive: true });
    await wc.fs.writeFile('/exp/sub/a.txt', 'A');
    await wc.fs.writeFile('/exp/skip.log', 'L');
    const tree = await wc.export('/exp', { excludes: ['*.log'] });
    expect(tree).toEqual({ sub: { directory: { 'a.txt': { file: { contents: new TextEncoder().encode('A') } } } } });
    // `binary` is a tar, which mount takes back.
    const tar = await wc.export('/exp', { format: 'binary' });
    await wc.mount(tar, { mountPoint: '/copy' });
    expect(await wc.fs.readFile('/copy/sub/a.txt', 'utf8')).toBe('A');
    expect(await wc.fs.readFile('/copy/skip.log', 'utf8')).toBe('L');
    const zip = await wc.export('/exp', { format: 'zip' });
    expect([...zip.subarray(0, 4)]).toEqual([0x50, 0x4b, 0x03, 0x04]);
  }, 180_000);

  it('lists with file types or as bytes, renames, and watches like Node', async () => {
    await wc.fs.mkdir('/ls/inner', { recursive: true });
    await wc.fs.writeFile('/ls/file.txt', 'f');
    const typed = await wc.fs.readdir('/ls', { withFileTypes: true });
    expect(typed.map((d) => [d.name, d.isFile(), d.isDirectory()]).sort()).toEqual([['file.txt', true, false], ['inner', false, true]]);
    const raw = await wc.fs.readdir('/ls', { encoding: 'buffer' });
    expect(raw.map((b) => new TextDecoder().decode(b)).sort()).toEqual(['file.txt', 'inner']);
    await wc.fs.rename('/ls/file.txt', '/ls/inner/moved.txt');
    expect(await wc.fs.readFile('/ls/inner/moved.txt', 'utf8')).toBe('f');
    const events: Array<[string, string]> = [];
    const notify = new Set<() => void>();
    const watcher = wc.fs.watch('/ls', { recursive: true }, (event, filename) => {
      events.push([event, String(filename)]);
      for (const n of notify) n();
    });
    await watcher.ready;
    const seen = waitFor<Array<[string, string]>>((l) => {
      const n = () => l(events);
      notify.add(n);
      return () => notify.delete(n);
    }, (list) => list.some(([e, f]) => e === 'rename' && f === 'inner/from-shell.txt'), 60_000, 'the watch event');
    seen.catch(() => undefined); // awaited below; this keeps an earlier failure from leaving it unhandled
    const maker = await wc.spawn('sh', ['-c', 'echo x > ls/inner/from-shell.txt'], { output: false });
    expect(await maker.exit).toBe(0);
    await seen.catch((err: unknown) => {
      throw new Error(`${String(err)}; events: ${JSON.stringify(events)}`);
    });
    watcher.close();
  }, 180_000);
  it('injects setPreviewScript into the pages its previews serve, and brings their errors back as preview-message (forwardPreviewErrors)', async () => {
    await wc.mount({ site: { directory: { 'index.html': { file: { contents: '<html><head><title>p</title></head><body>page</body></html>' } } } } });
    await wc.fs.writeFile('/site/server.js', SERVER.replace('3000', '3100'));
    await wc.setPreviewScript('window.__fromIde = 1;', { type: 'module' });
    expect(wc.previewScriptSource).toBe('window.__fromIde = 1;');
    // A second instance on the same session (attached: teardown leaves it), booted as bolt.diy boots.
    const bolt = await WebContainer.boot({ apiUrl: stack.baseUrl, token, sessionId: wc.sessionId, forwardPreviewErrors: true, workdirName: 'project', WebSocket: WebSocket as never });
    try {
      const ready = waitFor<{ port: number; url: string }>((l) => wc.on('server-ready', (port, url) => l({ port, url })), (r) => r.port === 3100, 60_000, 'server-ready 3100');
      const server = await wc.spawn('node', ['server.js'], { cwd: '/site' });
      const { url } = await ready;
      const landing = await browserGet(stack.port, url);
      expect(landing.status).toBe(302);
      const clean = new URL(landing.location!, url).toString();
      const page = (await browserGet(stack.port, clean, landing.setCookie)).body;
      expect(page.startsWith('<html><head><script>(function () {\n  if (window.__mominaiPreviewReporter) return;')).toBe(true);
      expect(page).toContain('</script><script type="module">window.__fromIde = 1;</script><title>p</title>');
      // What the reporter in that page posts when it meets an uncaught error.
      const got = waitFor<PreviewMessage>((l) => bolt.on('preview-message', l), () => true, 30_000, 'preview-message');
      const gotFirst = waitFor<PreviewMessage>((l) => wc.on('preview-message', l), () => true, 30_000, 'preview-message on the first instance');
      const body = { type: 'PREVIEW_UNCAUGHT_EXCEPTION', message: 'boom', stack: 'Error: boom\n    at /:1:1', pathname: '/', search: '', hash: '' };
      expect(await browserPost(stack.port, new URL('/__mominai/preview-message', clean).toString(), landing.setCookie!, JSON.stringify(body))).toBe(204);
      const expected = { ...body, type: PreviewMessageType.UncaughtException, port: 3100, previewId: `3100-${wc.sessionId}` };
      expect(await got).toEqual(expected);
      expect(await gotFirst).toEqual(expected);
      server.kill();
      expect(await server.exit).not.toBe(0);
      await wc.setPreviewScript('');
      expect(wc.previewScriptSource).toBeUndefined();
    } finally {
      bolt.teardown();
      await bolt.tornDown;
      await wc.connection.setPreviewScript({ script: null, forwardErrors: false });
    }
  }, 180_000);

  it('shows the workdir as /home/<workdirName> when boot names one, mapping its paths to /workspace', async () => {
    const named = await WebContainer.boot({ apiUrl: stack.baseUrl, token, sessionId: wc.sessionId, workdirName: 'project', WebSocket: WebSocket as never });
    try {
      expect(named.workdir).toBe('/home/project');
      let watching: Promise<void> | undefined;
      const seen = waitFor<PathWatcherEvent[]>(
        (l) => {
          const stop = named.internal.watchPaths({ include: ['/home/project/named/**'] }, l);
          watching = stop.ready;
          return stop;
        },
        (batch) => batch.some((e) => e.path === '/home/project/named/a.txt'),
        30_000,
        'the watchPaths event',
      );
      seen.catch(() => undefined); // awaited below; this keeps an earlier failure from leaving it unhandled
      await watching;
      await named.fs.mkdir('/home/project/named', { recursive: true });
      await named.fs.writeFile('/home/project/named/a.txt', 'via the shown workdir');
      expect(await wc.fs.readFile('/named/a.txt', 'utf8')).toBe('via the shown workdir');
      expect(await named.fs.readFile('named/a.txt', 'utf8')).toBe('via the shown workdir');
      const pwd = await named.spawn('sh', ['-c', 'pwd; cat a.txt'], { cwd: '/home/project/named' });
      let text = '';
      await pwd.output.pipeTo(new WritableStream({ write: (c) => void (text += c) }));
      expect(await pwd.exit).toBe(0);
      expect(text).toBe('/workspace/named\r\nvia the shown workdir');
      expect((await seen).map((e) => e.path)).toContain('/home/project/named/a.txt');
      expect(await named.export('/home/project/named')).toEqual({ 'a.txt': { file: { contents: new TextEncoder().encode('via the shown workdir') } } });
    } finally {
      named.teardown();
      await named.tornDown;
    }
    await expect(WebContainer.boot({ apiUrl: stack.baseUrl, token, workdirName: '../etc', WebSocket: WebSocket as never })).rejects.toMatchObject({
      code: 'validation_failed',
      message: 'workdirName must be one folder name (letters, digits, \'.\', \'_\', \'-\'; at most 64), not "../etc"',
    });
  }, 180_000);
});
