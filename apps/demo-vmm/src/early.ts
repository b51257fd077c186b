/**
 * The first thing `rxvmm-demo`'s bin runs, before the CLI's bundle loads: when the command line will
 * run the guest on /dev/kvm, the vCPU worker starts now, so Node boots it while the main thread loads
 * the CLI and sets the VM up (process start → the guest's first instruction is the figure). Loads
 * only `@rxvmm/kvm-linux/prepare` (no native addon, no runner).
 */
import { accessSync, constants } from 'node:fs';
import type { PreparedVcpu } from '@rxvmm/kvm-linux/prepare';
import { prepareVcpu } from './vmm/prepare-vcpu.js';

/**
 * A vCPU worker for `runDemo` when `argv` is a run that will likely use /dev/kvm, else undefined:
 * not for --help, nor for `--backend soft` (the last --backend wins, as in parseOptions), nor where
 * /dev/kvm does not open read-write (`auto` falls back to SoftKvm there; `kvm` fails). The full
 * parse (parseOptions, whose first use costs about a millisecond) comes after, in the CLI. A guess
 * that turns out wrong costs nothing but the head start: `runDemo` ends a worker it does not use
 * and starts its own when it has none; usage errors are the CLI's to report.
 */
export function prepareEarly(argv: readonly string[]): PreparedVcpu | undefined {
  if (!wantsKvm(argv)) return undefined;
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return undefined;
  }
  try {
    return prepareVcpu();
  } catch {
    return undefined; // the CLI reports a worker that cannot start when it starts its own
  }
}

/** Whether the command line asks for a run that may be on /dev/kvm (`--backend` auto or kvm, no --help). */
export function wantsKvm(argv: readonly string[]): boolean {
  let backend = 'auto';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') break;
    if (arg === '-h' || arg === '--help') return false;
    if (arg === '--backend') backend = argv[++i] ?? backend;
    else if (arg?.startsWith('--backend=')) backend = arg.slice('--backend='.length);
  }
  return backend !== 'soft';
}
