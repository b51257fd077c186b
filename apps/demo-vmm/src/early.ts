/**
 * The first thing `rxvmm-demo`'s bin runs, before the CLI's bundle loads: when the command line will
 * run the guest on /dev/kvm, the vCPU worker starts now, so Node boots it while the main thread loads
 * the CLI and sets the VM up (process start → the guest's first instruction is the figure). Loads
 * only the option parser and `@rxvmm/kvm-linux/prepare` (no native addon, no runner).
 */
import { accessSync, constants } from 'node:fs';
import type { PreparedVcpu } from '@rxvmm/kvm-linux/prepare';
import { parseOptions } from './options.js';
import { prepareVcpu } from './vmm/prepare-vcpu.js';

/**
 * A vCPU worker for `runDemo` when `argv` is a run that will likely use /dev/kvm (`--backend kvm`,
 * or `auto` on a machine where /dev/kvm opens read-write), else undefined. A guess that turns out
 * wrong costs nothing but the head start: `runDemo` disposes a worker it does not use and starts
 * its own when it has none. Usage errors and --help are left to the CLI.
 */
export function prepareEarly(argv: readonly string[]): PreparedVcpu | undefined {
  let backend: string;
  try {
    const options = parseOptions([...argv]);
    if (options.help) return undefined;
    backend = options.backend;
  } catch {
    return undefined;
  }
  if (backend === 'soft') return undefined;
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
