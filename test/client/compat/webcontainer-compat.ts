/**
 * Type-level compatibility with StackBlitz's @webcontainer/api 1.6.4 (types
 * only; checked by compat.test.ts with tsc, and by `npm run typecheck`).
 */
import type {
  FileSystemAPI as TheirFileSystemAPI,
  FileSystemTree as TheirFileSystemTree,
  WebContainer as TheirWebContainer,
  WebContainerProcess as TheirProcess,
} from '@webcontainer/api';
import { WebContainer, type FileSystemAPI, type FileSystemTree, type WebContainerProcess } from '@mominai/client/webcontainer';

type Surface<T> = { [K in keyof T]: T[K] };

declare const ours: WebContainer;
export const instance: Surface<TheirWebContainer> = ours;
declare const process: WebContainerProcess;
export const proc: TheirProcess = process;
declare const fsApi: FileSystemAPI;
export const fs: TheirFileSystemAPI = fsApi;
declare const tree: FileSystemTree;
export const theirTree: TheirFileSystemTree = tree;
declare const given: TheirFileSystemTree;
export const ourTree: FileSystemTree = given;

declare const partial: Omit<WebContainer, 'spawn'>;
// @ts-expect-error proves the check above is live: without spawn it is not a WebContainer
export const broken: Surface<TheirWebContainer> = partial;

/**
 * The flow of StackBlitz's WebContainer tutorial, as written for
 * @webcontainer/api, with only the import and the boot options changed.
 */
export async function tutorial(iframe: { src: string }, textarea: { value: string }, terminal: { write(s: string): void }) {
  const files: FileSystemTree = {
    'index.js': { file: { contents: 'console.log("hi")' } },
    'package.json': { file: { contents: '{"name":"example-app"}' } },
  };
  const webcontainerInstance = await WebContainer.boot({ apiUrl: 'https://api.example.com', token: 'token' });
  await webcontainerInstance.mount(files);
  const packageJSON = await webcontainerInstance.fs.readFile('package.json', 'utf-8');
  console.log(packageJSON);
  const installProcess = await webcontainerInstance.spawn('npm', ['install']);
  installProcess.output.pipeTo(new WritableStream({ write(data) { terminal.write(data); } }));
  if ((await installProcess.exit) !== 0) throw new Error('Installation failed');
  await webcontainerInstance.spawn('npm', ['run', 'start']);
  webcontainerInstance.on('server-ready', (port, url) => {
    void port;
    iframe.src = url;
  });
  await webcontainerInstance.fs.writeFile('/index.js', textarea.value);
  const shellProcess = await webcontainerInstance.spawn('jsh', { terminal: { cols: 80, rows: 24 } });
  const input = shellProcess.input.getWriter();
  await input.write('ls\n');
  shellProcess.resize({ cols: 100, rows: 30 });
  const entries = await webcontainerInstance.fs.readdir('/', { withFileTypes: true });
  entries.filter((e) => e.isDirectory()).map((e) => e.name.toUpperCase());
  const watcher = webcontainerInstance.fs.watch('/src', { recursive: true }, (event, filename) => console.log(event, filename));
  watcher.close();
  const snapshot = await webcontainerInstance.export('/', { format: 'json', excludes: ['node_modules'] });
  await webcontainerInstance.mount(snapshot);
  webcontainerInstance.teardown();
}
