import { type ChildProcess, type ForkOptions, fork } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * The sources run as TypeScript through tsx's loader. A worker thread or child process does not inherit a
 * loader registered with `register()` in its parent, so every thread or process we start gets it explicitly.
 */
const tsxLoader = import.meta.resolve('tsx');
/**
 * On Node 20 a worker thread ignores `--import` loaders in its execArgv (module hooks are not set up per
 * worker), so a worker starts from a tiny bootstrap that registers tsx in the thread and then imports the module.
 */
const tsxEsmApi = import.meta.resolve('tsx/esm/api');

function withLoader(execArgv: readonly string[] | undefined): string[] {
  const args = [...(execArgv ?? [])];
  if (!args.some((a, i) => a === '--import' && args[i + 1] === tsxLoader)) args.unshift('--import', tsxLoader);
  return args;
}

function moduleUrl(module: URL | string): string {
  if (module instanceof URL) return module.href;
  return /^[a-z]+:/.test(module) ? module : pathToFileURL(module).href;
}

/** Starts a worker thread running a TypeScript (or JavaScript) module. */
export function spawnWorker(module: URL | string, options: WorkerOptions = {}): Worker {
  const code = `import { register } from ${JSON.stringify(tsxEsmApi)};\nregister();\nawait import(${JSON.stringify(moduleUrl(module))});\n`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), options);
}

/** Starts a separate Node.js process running a TypeScript (or JavaScript) module, with an IPC channel. */
export function spawnProcess(
  module: URL | string,
  args: readonly string[] = [],
  options: ForkOptions = {},
): ChildProcess {
  const file = module instanceof URL ? module.pathname : module;
  return fork(file, [...args], { ...options, execArgv: withLoader(options.execArgv) });
}
