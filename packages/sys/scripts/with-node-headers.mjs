#!/usr/bin/env node
// Runs a native build command (node-gyp-build, node-gyp, prebuildify) against the
// headers of the Node that runs it, so a build never downloads them: official
// Node builds and Debian's nodejs ship them in <prefix>/include/node. An
// explicit npm_config_nodedir (or ~/.npmrc's nodedir) still wins.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

const [command, ...args] = process.argv.slice(2);
if (!command) {
  console.error('usage: with-node-headers.mjs <command> [args...]');
  process.exit(2);
}
const env = { ...process.env };
const prefix = dirname(dirname(process.execPath));
if (!env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) {
  env.npm_config_nodedir = prefix;
}
const result = spawnSync(command, args, { stdio: 'inherit', env });
if (result.error) {
  console.error(`${command}: ${result.error.message}`);
  process.exit(1);
}
process.exit(result.status ?? 1);
