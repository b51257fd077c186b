/**
 * rxvmm-demo's command line: runs the demo guest and prints a summary (or, with --json, one
 * JSON object on stdout and nothing else, whatever happens: the run's report,
 * or `{ ok: false, error, code, exitCode, backend }` when there is no run to
 * report). Exit codes: 0 every request verified; 1 the run failed (bad disk,
 * unusable TMPDIR or /dev/kvm, device error, guest failure); 2 usage; 130
 * interrupted.
 */
import { kvmAvailability } from '@rxvmm/kvm-linux';
import type { PreparedVcpu } from '@rxvmm/kvm-linux/prepare';
import { flagGiven } from './cli-args.js';
import { type DemoOptions, parseOptions, USAGE, UsageError } from './options.js';
import { formatSummary } from './report.js';
import { type DemoFailure, runDemo } from './run.js';
import { SetupError } from './setup-error.js';

const stderr = (line: string) => process.stderr.write(`rxvmm-demo: ${line}\n`);

/** Reports a failure with no run behind it: stderr always, one JSON object on stdout with --json. */
function fail(json: boolean, failure: Omit<DemoFailure, 'ok'>, usage = false): number {
  for (const line of failure.error.split('\n')) stderr(line);
  if (usage) process.stderr.write("Try 'rxvmm-demo --help'.\n");
  if (json) process.stdout.write(`${JSON.stringify({ ok: false, ...failure } satisfies DemoFailure)}\n`);
  return failure.exitCode;
}

async function main(argv: string[], prepared: PreparedVcpu | undefined): Promise<number> {
  let options: DemoOptions;
  try {
    options = parseOptions(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    // Parsing failed, so --json is taken from argv as given.
    const json = flagGiven(argv, '--json');
    return fail(json, { error: error.message, code: 'USAGE', exitCode: 2, backend: null }, true);
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
  let backend: DemoFailure['backend'] = null;
  try {
    const report = await runDemo(options, {
      signal: abort.signal,
      prepared,
      onBackend: (c) => {
        backend = c.backend;
        if (options.backend === 'auto') stderr(`backend ${c.backend} (${c.reason})`);
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
    else process.stdout.write(`rxvmm-demo\n${formatSummary(report)}\n`);
    if (!report.ok && options.json) stderr(report.error ?? 'failed');
    return report.ok ? 0 : abort.signal.aborted ? 130 : 1;
  } catch (error) {
    if (live) process.stderr.write('\r\x1b[K');
    const e = error as Error & { code?: string };
    if (process.env.RXVMM_DEBUG) process.stderr.write(`${e.stack}\n`);
    // A problem the user can fix (disk, TMPDIR, vhost-user socket): its message names the path and the fix.
    if (error instanceof SetupError)
      return fail(options.json, { error: e.message, code: e.code ?? null, exitCode: 1, backend });
    const prefix = e.code && !e.message.startsWith(e.code) ? `${e.code}: ` : '';
    let message = `${prefix}${e.message}`;
    // An explicit --backend kvm on a machine without a usable /dev/kvm: name the way out in CLI terms.
    if (options.backend === 'kvm' && !kvmAvailability().available)
      message +=
        "\n'--backend soft' runs the same guest on SoftKvm; '--backend auto' picks it when /dev/kvm is unusable";
    return fail(options.json, { error: message, code: e.code ?? null, exitCode: 1, backend });
  }
}

/**
 * Runs `rxvmm-demo` with `argv` and sets `process.exitCode`. `prepared`: a vCPU worker the entry
 * started before this module loaded (`prepareEarly`); one the run does not use is ended.
 */
export function runCli(argv: string[], prepared?: PreparedVcpu): void {
  main(argv, prepared)
    .then(
      (code) => {
        process.exitCode = code;
      },
      (error: unknown) => {
        // A bug of ours: the stack for the report, and still the one JSON object --json promises.
        const e = error as Error & { code?: string };
        process.exitCode = fail(flagGiven(argv, '--json'), {
          error: e.stack ?? String(error),
          code: typeof e.code === 'string' ? e.code : null,
          exitCode: 1,
          backend: null,
        });
      },
    )
    .finally(() => prepared?.[Symbol.dispose]());
}
