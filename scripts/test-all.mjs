#!/usr/bin/env node
// Builds every package, runs every package's tests through turbo, then checks the
// packages as they would be published (scripts/check-packages.mjs on the build just
// made), and sums the vitest JSON reports and those checks into the one plain line CI
// reads: `N passed, N failed[, N skipped]`.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const workspaces = [
  ...['packages', 'apps', 'tools'].flatMap((dir) =>
    existsSync(join(root, dir)) ? readdirSync(join(root, dir)).map((name) => join(root, dir, name)) : [],
  ),
  join(root, 'examples'), // the example programs (examples/test); tools/docs: the API reference
].filter((dir) => existsSync(join(dir, 'package.json')));
const reports = workspaces.map((dir) => join(dir, '.test-results.json'));
for (const report of reports) rmSync(report, { force: true });

// A test that hangs (a guest that never gets its interrupt blocks KVM_RUN) must
// fail the run with the summary line still printed, not eat CI's whole budget.
// biome-ignore lint/suspicious/noUndeclaredEnvVars: read by this script, not by a turbo task
const TEST_BUDGET_MS = Number(process.env.RXVMM_TEST_BUDGET_MS ?? 30 * 60 * 1000);

const turbo = (args, budgetMs) => {
  const bin = join(root, 'node_modules/.bin/turbo');
  // GNU timeout signals its whole process group, so vitest workers go too.
  const [cmd, argv] = budgetMs
    ? ['timeout', ['--kill-after=20', String(Math.ceil(budgetMs / 1000)), bin, ...args]]
    : [bin, args];
  const status = spawnSync(cmd, argv, { cwd: root, stdio: 'inherit' }).status ?? 1;
  if (budgetMs && status === 124) console.log(`turbo ${args.join(' ')}: stopped after ${budgetMs} ms`);
  return status;
};

const buildStatus = turbo(['run', 'build', '--output-logs=errors-only']);
// One package at a time: the KVM and QEMU tests measure real guests on 2 cores.
const testStatus =
  buildStatus === 0 ? turbo(['run', 'test', '--continue', '--concurrency=1'], TEST_BUDGET_MS) : 1;

// Checks written as scripts, each closing with `N passed, N failed`, which joins the total:
// the packed tarballs (publint, attw, manifests, imports, SoftKvm installed without a
// compiler) and the docs (references to docs/SEMANTICS.md and docs/ARCHITECTURE.md resolve).
const SCRIPT_BUDGET_S = 10 * 60;
const checkScript = async (script, ...args) => {
  // Streamed as it runs and kept for its closing line; GNU timeout stops its whole process group.
  const child = spawn(
    'timeout',
    ['--kill-after=20', String(SCRIPT_BUDGET_S), process.execPath, script, ...args],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (chunk) => {
    out += chunk;
    process.stdout.write(chunk);
  });
  const status = await new Promise((resolve) => child.on('close', (code) => resolve(code ?? 1)));
  const summary = /^(\d+) passed, (\d+) failed$/.exec(out.trimEnd().split('\n').at(-1) ?? '');
  if (summary === null) {
    console.log(`${script}: no summary line (exit status ${status}${status === 124 ? ', timed out' : ''})`);
    return { passed: 0, failed: 1 };
  }
  return { passed: Number(summary[1]), failed: Number(summary[2]) };
};
const scripts =
  buildStatus === 0
    ? [
        await checkScript('scripts/check-packages.mjs', '--no-build'),
        await checkScript('scripts/check-docs.mjs'),
      ]
    : [];

let passed = scripts.reduce((n, s) => n + s.passed, 0);
let failed = scripts.reduce((n, s) => n + s.failed, 0);
let skipped = 0;
const missing = [];
for (const [i, report] of reports.entries()) {
  const pkg = JSON.parse(readFileSync(join(workspaces[i], 'package.json'), 'utf8'));
  if (!pkg.scripts?.test) continue;
  if (!existsSync(report)) {
    missing.push(pkg.name);
    continue;
  }
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests + (r.numTodoTests ?? 0);
  // A suite that failed to load counts as a failure even when no test in it ran.
  for (const file of r.testResults ?? [])
    if (file.status === 'failed' && file.assertionResults.length === 0) failed += 1;
}
if (buildStatus !== 0) console.log('build failed');
if (missing.length > 0) {
  console.log(`no test report from: ${missing.join(', ')}`);
  failed += missing.length;
}
console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || testStatus !== 0 || buildStatus !== 0 ? 1 : 0);
