/**
 * Loads the VMM's handler module in the vCPU worker: `import()`, or `require` for a CommonJS
 * module (`.cjs`, e.g. a VMM's esbuild bundle), which starts no ES module loader in this thread.
 * A missing file goes to `import()` too, so its error is the loader's (handler-load-error.ts).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export function loadHandlerModule(url: string): Promise<unknown> {
  if (url.startsWith('file:') && url.endsWith('.cjs')) {
    const file = fileURLToPath(url);
    if (existsSync(file)) return new Promise((resolve) => resolve(createRequire(url)(file)));
  }
  return import(url);
}
