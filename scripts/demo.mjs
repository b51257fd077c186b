#!/usr/bin/env node
// `pnpm demo [rxvmm-demo options]`: builds rxvmm-demo and the packages it uses, quietly (one line,
// or the whole build log when the build fails), then runs it with the options given, so the first
// thing on the screen is the demo's own output and its summary, not ~150 lines of turbo and tsc.
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const cli = join(root, 'apps/demo-vmm/dist/bundle/cli.cjs'); // the package's bin (scripts/bundle.mjs)
const args = process.argv.slice(2);
// biome-ignore lint/suspicious/noUndeclaredEnvVars: read by this script (its test replaces the build), not by a turbo task
const buildOverride = process.env.RXVMM_DEMO_BUILD;
const [buildCmd, buildArgs] = buildOverride
  ? ['sh', ['-c', buildOverride]]
  : [
      join(root, 'node_modules/.bin/turbo'),
      ['run', 'build', '--filter=@rxvmm/demo-vmm...', '--output-logs=errors-only'],
    ];

/** Runs the build with its output captured; resolves with the exit code and the output. */
function build() {
  return new Promise((resolve) => {
    const child = spawn(buildCmd, buildArgs, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d) => {
      log += d;
    });
    child.stderr.on('data', (d) => {
      log += d;
    });
    child.on('error', (error) => resolve({ code: 1, log: `${log}${error.message}\n` }));
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 1 : 0), log }));
  });
}

const tty = process.stderr.isTTY === true;
const started = performance.now();
process.stderr.write(tty ? 'building rxvmm-demo and its packages…' : '');
const { code, log } = await build();
const seconds = ((performance.now() - started) / 1000).toFixed(1);
if (code !== 0) {
  process.stderr.write(`${tty ? '\r\x1b[K' : ''}${log}`);
  process.stderr.write(`pnpm demo: the build failed (exit ${code}, ${seconds} s): its log is above\n`);
  process.exit(code);
}
process.stderr.write(`${tty ? '\r\x1b[K' : ''}built rxvmm-demo and its packages (${seconds} s)\n`);

const demo = spawn(process.execPath, [cli, ...args], { stdio: 'inherit' });
// Ctrl-C reaches the demo too (same process group): let it stop the guest and report, then exit as it does.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => {});
demo.on('close', (status, signal) => process.exit(status ?? (signal ? 128 + 2 : 1)));
