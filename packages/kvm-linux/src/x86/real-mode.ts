/**
 * x86 plain real mode: what a vCPU looks like after reset, except that it
 * starts at a chosen linear address below 1 MiB instead of the reset vector.
 */
import { errnoError } from '@rxvmm/errno';
import type { Regs, Segment, Sregs, Vcpu } from '@rxvmm/kvm';

/** Options of `setupRealMode`. */
export interface RealModeOptions {
  /** Linear address of the first instruction (< 1 MiB). CS:IP is derived from it. */
  entry: bigint;
  /** Initial SP (SS base is 0); default 0, which wraps to 0xfffe on the first push. */
  stack?: bigint;
  regs?: Partial<Regs>;
}

function realSegment(selector: number, code: boolean): Segment {
  return {
    base: BigInt(selector) << 4n,
    limit: 0xffff,
    selector,
    type: code ? 0xb : 0x3,
    present: 1,
    dpl: 0,
    db: 0,
    s: 1,
    l: 0,
    g: 0,
    avl: 0,
    unusable: 0,
  };
}

/** The special registers for real mode with CS = `codeSelector` and the other segments 0. */
export function realModeSregs(base: Sregs, codeSelector = 0): Sregs {
  const data = realSegment(0, false);
  return {
    ...base,
    cs: realSegment(codeSelector, true),
    ds: data,
    es: data,
    fs: data,
    gs: data,
    ss: data,
    cr0: base.cr0 & ~((1n << 0n) | (1n << 31n)), // PE and PG off
    cr4: 0n,
    efer: 0n,
  };
}

/**
 * Puts `vcpu` in real mode at linear address `entry`: CS = entry >> 4 rounded
 * down to 64 KiB, IP = the rest; DS=ES=FS=GS=SS=0. Call on the vCPU's thread.
 */
export function setupRealMode(
  vcpu: Pick<Vcpu, 'getRegs' | 'setRegs' | 'getSregs' | 'setSregs'>,
  options: RealModeOptions,
): void {
  const { entry } = options;
  if (entry < 0n || entry >= 1n << 20n) throw errnoError('EINVAL', 'real-mode entry must be below 1 MiB');
  const selector = Number((entry >> 4n) & 0xf000n);
  const ip = entry - (BigInt(selector) << 4n);
  vcpu.setSregs(realModeSregs(vcpu.getSregs(), selector));
  vcpu.setRegs({ ...vcpu.getRegs(), ...options.regs, rip: ip, rsp: options.stack ?? 0n, rflags: 0x2n });
}
