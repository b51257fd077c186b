'use strict';
// Runs a CommonJS bundle through a V8 code cache (copied to dist/bundle/ by scripts/bundle.mjs; each
// entry there is a two-line stub calling `run`): compiling a bundle costs more than the rest of its
// loading, and V8 can skip it with the code it produced last time. Node 22.1+ has this built in
// (module.enableCompileCache); this works the same on 20, 22 and 24.
//
// The cache lives in $TMPDIR/rxvmm-compile-cache-<uid>/ (a directory of this user's, mode 0700, or
// none is used), one file per bundle, keyed by the bundle's path, size and mtime and Node's version
// and architecture (older ones of the same bundle are removed). A missing or rejected cache is
// (re)written: on the main thread when the process exits, from everything the run compiled; in a
// worker (which its owner may terminate, so it has no exit to wait for) once the bundle's top level
// has run. Any failure only means compiling as usual. Set RXVMM_NO_COMPILE_CACHE=1 to skip it.
const fs = require('node:fs');
const path = require('node:path');
const Module = require('node:module');
const vm = require('node:vm');

/** The cache directory, created if need be; undefined when it is not safely ours. */
function cacheDir() {
  if (process.env.RXVMM_NO_COMPILE_CACHE || typeof process.getuid !== 'function') return undefined;
  const dir = path.join(process.env.TMPDIR || '/tmp', `rxvmm-compile-cache-${process.getuid()}`);
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (error) {
    if (error.code !== 'EEXIST') return undefined;
  }
  try {
    const st = fs.lstatSync(dir);
    // Only a real directory of this user that nobody else can write: V8 runs what is in the cache.
    if (!st.isDirectory() || st.uid !== process.getuid() || (st.mode & 0o022) !== 0) return undefined;
  } catch {
    return undefined;
  }
  return dir;
}

/**
 * Loads and runs the CommonJS bundle `file` as the module `module` would (exports, require, ...);
 * returns its exports.
 */
function run(file, module = { exports: {} }) {
  const source = fs.readFileSync(file, 'utf8');
  const dir = cacheDir();
  let cacheFile;
  let cachedData;
  if (dir) {
    const st = fs.statSync(file);
    const key = `${file}|${st.size}|${st.mtimeMs}|${process.version}|${process.arch}`;
    cacheFile = path.join(dir, `${path.basename(file)}-${hash(key)}.cache`);
    try {
      cachedData = fs.readFileSync(cacheFile);
    } catch {
      cachedData = undefined;
    }
  }
  // No importModuleDynamically: registering one starts the ES module loader, which these bundles
  // never need (a dynamic import() in them would throw ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING).
  const script = new vm.Script(Module.wrap(source.replace(/^#!.*/, '')), { filename: file, cachedData });
  const save =
    cacheFile && (cachedData === undefined || script.cachedDataRejected)
      ? () => {
          try {
            const tmp = `${cacheFile}.${process.pid}.${Math.random().toString(36).slice(2)}`;
            fs.writeFileSync(tmp, script.createCachedData(), { mode: 0o600 });
            fs.renameSync(tmp, cacheFile);
            // Caches of this bundle's earlier builds (or another Node) are stale: one per bundle is kept.
            const prefix = `${path.basename(file)}-`;
            for (const other of fs.readdirSync(dir)) {
              if (other.startsWith(prefix) && other.endsWith('.cache') && other !== path.basename(cacheFile))
                fs.rmSync(path.join(dir, other), { force: true });
            }
          } catch {
            // no cache this time
          }
        }
      : undefined;
  const mainThread = require('node:worker_threads').isMainThread;
  if (save && mainThread) process.once('exit', save);
  const fn = script.runInThisContext();
  const req = Module.createRequire(file);
  fn.call(module.exports, module.exports, req, module, file, path.dirname(file));
  if (save && !mainThread) save();
  return module.exports;
}

/** FNV-1a of a string, as 8 hex digits (a file name, not security: the directory is the guard). */
function hash(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

module.exports = { run };
