import { type ChildProcess, type ForkOptions, fork } from 'node:child_process';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * The sources run as TypeScript through tsx's loader. A worker thread or child process does not inherit a
 * loader registered with `register()` in its parent, so every thread or process we start gets it explicitly.
 */
const tsxLoader = import.meta.resolve('tsx');

function withLoader(execArgv: readonly string[] | undefined): string[] {
  const args = [...(execArgv ?? [])];
  if (!args.some((a, i) => a === '--import' && args[i + 1] === tsxLoader)) args.unshift('--import', tsxLoader);
  return args;
}

/** Starts a worker thread running a TypeScript (or JavaScript) module. */
export function spawnWorker(module: URL | string, options: WorkerOptions = {}): Worker {
  return new Worker(module, { ...options, execArgv: withLoader(options.execArgv) });
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
