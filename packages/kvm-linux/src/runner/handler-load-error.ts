/**
 * Why the vCPU worker could not import the handler module, in words a VMM
 * author can act on. The usual case: the handler is TypeScript source and
 * the worker has no TypeScript loader (Node 20 does not apply module hooks
 * such as tsx's to worker threads; Node's own type stripping does not map
 * `./exit-handler.js` to `./exit-handler.ts`). The error keeps the loader's
 * `.code` (ERR_UNKNOWN_FILE_EXTENSION, ERR_MODULE_NOT_FOUND, ...).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const TS_SOURCE = /\.[cm]?ts$/;
const JS_BUILT = /\.([cm]?)js$/;

/** The Node major version (process.versions.node). */
function nodeMajor(): number {
  return Number(process.versions.node.split('.')[0]);
}

/** How this worker could run TypeScript, or undefined: Node's own type stripping, or a loader flag. */
export function typeScriptSupport(execArgv: readonly string[] = process.execArgv): string | undefined {
  const features = process.features as { typescript?: string | false };
  if (typeof features.typescript === 'string') return `Node's type stripping (${features.typescript})`;
  const loader = execArgv.find((a) => /tsx|ts-node|strip-types|transform-types/.test(a));
  if (loader) return `the loader ${loader}`;
  const fromEnv = (process.env.NODE_OPTIONS ?? '').match(/\S*(tsx|ts-node)\S*/);
  return fromEnv ? `the loader ${fromEnv[0]} (NODE_OPTIONS)` : undefined;
}

/** What to do, for this Node version and loader. */
function advice(tsFile: string, support: string | undefined): string {
  if (nodeMajor() < 22)
    return (
      `Node ${process.versions.node} does not apply TypeScript loaders (tsx, --import hooks) to worker ` +
      'threads, and the handler runs in one: run the VMM on Node 22 or newer (with tsx, or Node 22.6+ ' +
      `with --experimental-strip-types, the default from 22.18), or point \`handler\` at the compiled JavaScript.`
    );
  if (support === undefined)
    return (
      'start the process with a TypeScript loader, which the vCPU worker inherits: `node --import tsx vmm.ts` ' +
      "(or `tsx vmm.ts`), or Node's type stripping (`--experimental-strip-types` on 22.6+, the default from 22.18); " +
      'or point `handler` at the compiled JavaScript.'
    );
  return (
    `${support} loads .ts files but does not map .js names to them: name the source in \`handler\` ` +
    `(new URL('./${tsFile.split('/').pop()}', import.meta.url)), run under tsx (which maps them), or point ` +
    '`handler` at the compiled JavaScript.'
  );
}

/** The TypeScript source next to a missing `.js`/`.mjs`/`.cjs` handler file, if there is one. */
function sourceFor(file: string): string | undefined {
  const m = JS_BUILT.exec(file);
  if (!m) return undefined;
  const ts = file.replace(JS_BUILT, `.${m[1]}ts`);
  return existsSync(ts) ? ts : undefined;
}

/** Turns the import() failure of `handlerUrl` into an error saying why and what to do; `.code` kept. */
export function handlerLoadError(handlerUrl: string, error: unknown): Error {
  const original = error instanceof Error ? error : new Error(String(error));
  const code = (original as { code?: unknown }).code;
  let file: string | undefined;
  try {
    file = fileURLToPath(handlerUrl);
  } catch {
    file = undefined; // not a file: URL (data:, a bare name): nothing to inspect
  }
  const support = typeScriptSupport();
  let message = `cannot load the handler module ${handlerUrl}: ${original.message}`;
  if (file && TS_SOURCE.test(file) && code === 'ERR_UNKNOWN_FILE_EXTENSION') {
    message =
      `cannot load the handler module ${handlerUrl}: it is TypeScript and the vCPU worker has no ` +
      `TypeScript loader (${code}). ${advice(file, support)}`;
  } else if (file && code === 'ERR_MODULE_NOT_FOUND' && !existsSync(file)) {
    const ts = sourceFor(file);
    message = ts
      ? `cannot load the handler module ${handlerUrl}: ${file} does not exist, but its TypeScript source ` +
        `${ts} does. ${advice(ts, support)}`
      : `cannot load the handler module ${handlerUrl}: ${file} does not exist (build it, or fix the URL).`;
  }
  const wrapped = new Error(message, { cause: original }) as Error & { code?: string };
  if (typeof code === 'string') wrapped.code = code;
  return wrapped;
}
