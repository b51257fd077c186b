#!/usr/bin/env node
// `pnpm playground` (after the build): serves apps/playground/dist on 127.0.0.1 and prints the
// URL. Port: --port N, or $PORT, or 5178 (0 picks a free one).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from './server.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
if (!existsSync(join(root, 'index.html'))) {
  console.error('playground: dist/ is not built; run `pnpm playground` from the repository root');
  process.exit(1);
}
const flag = process.argv.indexOf('--port');
const port = Number(flag >= 0 ? process.argv[flag + 1] : (process.env.PORT ?? 5178));
const { url } = await startServer({ root, port });
console.log(`rxvmm playground: ${url}  (Ctrl-C stops it)`);
