#!/usr/bin/env node
// The sources are TypeScript run through tsx, so there is no build step between a checkout and a working
// command; worker threads and child processes get the same loader through @exonet/ipc's spawn helpers.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
process.exitCode = await main(process.argv.slice(2));
