#!/usr/bin/env node
/**
 * rxvmm-demo: runs the demo guest and prints a summary (or, with --json, one
 * JSON object on stdout and nothing else). Exit codes: 0 every request
 * verified; 1 the run failed (bad disk, device error, guest failure); 2 usage.
 */
import { kvmAvailability } from '@rxvmm/kvm-linux';
import { DiskError } from './disk.js';
import { parseOptions, USAGE, UsageError } from './options.js';
import { formatSummary } from './report.js';
import { runDemo } from './run.js';

async function main(argv: string[]): Promise<number> {
  let options: ReturnType<typeof parseOptions>;
  try {
    options = parseOptions(argv);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`rxvmm-demo: ${error.message}\nTry 'rxvmm-demo --help'.\n`);
      return 2;
    }
    throw error;
  }
  if (options.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const live = !options.json && process.stderr.isTTY === true;
  const total = options.requests * 2;
  // Ctrl-C / SIGTERM: stop the vCPU and shut down cleanly (the temporary disk is removed).
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const report = await runDemo(options, {
      signal: abort.signal,
      onBackend: (c) => {
        if (options.backend === 'auto')
          process.stderr.write(`rxvmm-demo: backend ${c.backend} (${c.reason})\n`);
      },
      ...(live
        ? {
            onProgress: (verified: number, completed: number) => {
              const pct = Math.floor((100 * completed) / total);
              process.stderr.write(
                `\r  guest: ${verified}/${options.requests} requests verified, ${completed}/${total} transfers (${pct}%)`,
              );
            },
          }
        : {}),
    });
    if (live) process.stderr.write('\r\x1b[K');
    if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else {
      process.stdout.write(`rxvmm-demo\n${formatSummary(report)}\n`);
    }
    if (!report.ok && options.json) process.stderr.write(`rxvmm-demo: ${report.error}\n`);
    return report.ok ? 0 : abort.signal.aborted ? 130 : 1;
  } catch (error) {
    if (live) process.stderr.write('\r\x1b[K');
    if (error instanceof DiskError) {
      process.stderr.write(`rxvmm-demo: ${error.message}\n`);
      return 1;
    }
    const e = error as Error & { code?: string };
    const prefix = e.code && !e.message.startsWith(e.code) ? `${e.code}: ` : '';
    process.stderr.write(`rxvmm-demo: ${prefix}${e.message}\n`);
    // An explicit --backend kvm on a machine without a usable /dev/kvm: name the way out in CLI terms.
    if (options.backend === 'kvm' && !kvmAvailability().available)
      process.stderr.write(
        "rxvmm-demo: '--backend soft' runs the same guest on SoftKvm; '--backend auto' picks it when /dev/kvm is unusable\n",
      );
    if (process.env.RXVMM_DEBUG) process.stderr.write(`${e.stack}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`rxvmm-demo: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  },
);
