/**
 * A /dev/kvm vCPU's state as plain, versioned, JSON-serialisable data, and the
 * ioctls that take and load it: registers and special registers (decoded, as
 * `RegsState`/`SregsState` of `@rxvmm/kvm`), the FPU/SSE/AVX state (XSAVE, or
 * KVM_GET_FPU without it), the XCRs, every MSR KVM reports as saveable
 * (KVM_GET_MSR_INDEX_LIST) that this vCPU can read, the local APIC's register
 * page, the vCPU events (pending and injected exceptions, interrupts, NMIs,
 * SMIs) and the multiprocessor state. Kernel structs KVM fills and reads back
 * whole (XSAVE, LAPIC, events) are kept as their bytes, base64.
 *
 * Every call here is a vCPU ioctl: run it on the thread that created the vCPU
 * (`VcpuRunner` does, in its worker). A state read from a file is untrusted:
 * `checkLinuxVcpuState` accepts only what `takeVcpuState` could have written.
 */
import { errnoError, isErrno } from '@rxvmm/errno';
import type { Regs, RegsState, Segment, Sregs, SregsState } from '@rxvmm/kvm';
import { CONTROL_NAMES, REG_NAMES, SEGMENT_BYTES, SEGMENT_NAMES } from '@rxvmm/kvm';
import * as sys from '@rxvmm/sys';
import { KVM_CHECK_EXTENSION, LapicStateLayout } from './abi.js';
import {
  FpuLayout,
  KVM_CAP_VCPU_EVENTS,
  KVM_CAP_XCRS,
  KVM_CAP_XSAVE,
  KVM_CAP_XSAVE2,
  KVM_GET_FPU,
  KVM_GET_MP_STATE,
  KVM_GET_MSR_INDEX_LIST,
  KVM_GET_MSRS,
  KVM_GET_VCPU_EVENTS,
  KVM_GET_XCRS,
  KVM_GET_XSAVE,
  KVM_GET_XSAVE2,
  KVM_MAX_XCRS,
  KVM_MP_STATE_SUSPENDED,
  KVM_SET_FPU,
  KVM_SET_MP_STATE,
  KVM_SET_MSRS,
  KVM_SET_VCPU_EVENTS,
  KVM_SET_XCRS,
  KVM_SET_XSAVE,
  MpStateLayout,
  MsrEntryLayout,
  MsrListLayout,
  MsrsLayout,
  VcpuEventsLayout,
  XcrLayout,
  XcrsLayout,
  XsaveLayout,
} from './abi-snapshot.js';

/** Version of `LinuxVcpuState`; a state of another version is refused (EINVAL). */
export const LINUX_VCPU_STATE_VERSION = 1;

/** `LinuxVcpu.state()` / `VcpuRunner.stop({ saveState })`. */
export interface LinuxVcpuState {
  version: typeof LINUX_VCPU_STATE_VERSION;
  id: number;
  regs: RegsState;
  sregs: SregsState;
  /** struct kvm_xsave (KVM_GET_XSAVE/XSAVE2), or struct kvm_fpu on a host without XSAVE; base64. */
  fpu: { kind: 'xsave' | 'fpu'; bytes: string };
  /** The extended control registers (XCR0...), or null without KVM_CAP_XCRS. */
  xcrs: { xcr: number; value: string }[] | null;
  /** Saveable MSRs this vCPU could read, ascending by index. */
  msrs: { index: number; value: string }[];
  /** struct kvm_lapic_state (base64), or null without an in-kernel irqchip. */
  lapic: string | null;
  /** struct kvm_vcpu_events (base64), or null without KVM_CAP_VCPU_EVENTS. */
  events: string | null;
  /** KVM_MP_STATE_* (RUNNABLE, HALTED, INIT_RECEIVED, ...). */
  mpState: number;
}

/** What taking a vCPU's state needs from outside it. */
export interface VcpuStateContext {
  /** The vCPU's fd and its VM's fd (capabilities are VM ioctls). */
  fd: number;
  vmFd: number;
  id: number;
  /** KVM_GET_MSR_INDEX_LIST of /dev/kvm (`LinuxKvm.msrIndexList()`). */
  msrIndices: readonly number[];
  getRegs(): Regs;
  getSregs(): Sregs;
  setRegs(regs: Regs): void;
  setSregs(sregs: Sregs): void;
  getLapic(): Uint8Array;
  setLapic(bytes: Uint8Array): void;
}

const base64 = (bytes: Uint8Array) =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');

function capability(vmFd: number, cap: number): number {
  return sys.ioctl(vmFd, KVM_CHECK_EXTENSION, cap);
}

/** The XSAVE buffer size this VM's vCPUs use: KVM_CAP_XSAVE2's answer, at least 4 KiB. */
function xsaveSize(vmFd: number): number {
  return Math.max(XsaveLayout.size, capability(vmFd, KVM_CAP_XSAVE2));
}

/**
 * KVM_GET_MSR_INDEX_LIST on a /dev/kvm fd: the MSRs KVM saves and restores for
 * a vCPU, ascending. Asked once with room for none (E2BIG, and the kernel
 * writes the count), then with room for all.
 */
export function msrIndexList(kvmFd: number): number[] {
  const head = new Uint8Array(MsrListLayout.size);
  try {
    sys.ioctl(kvmFd, KVM_GET_MSR_INDEX_LIST, head);
  } catch (error) {
    if (!isErrno(error, 'E2BIG')) throw error;
  }
  const n = new DataView(head.buffer).getUint32(MsrListLayout.nmsrs, true);
  const list = new Uint8Array(MsrListLayout.indices + 4 * n);
  const view = new DataView(list.buffer);
  view.setUint32(MsrListLayout.nmsrs, n, true);
  sys.ioctl(kvmFd, KVM_GET_MSR_INDEX_LIST, list);
  const count = view.getUint32(MsrListLayout.nmsrs, true);
  return Array.from({ length: count }, (_, i) => view.getUint32(MsrListLayout.indices + 4 * i, true)).sort(
    (a, b) => a - b,
  );
}

/** Takes the whole state. Call it on the vCPU's thread, with the vCPU not in KVM_RUN. */
export function takeVcpuState(ctx: VcpuStateContext): LinuxVcpuState {
  let fpu: LinuxVcpuState['fpu'];
  if (capability(ctx.vmFd, KVM_CAP_XSAVE) > 0) {
    const size = xsaveSize(ctx.vmFd);
    const bytes = new Uint8Array(size);
    sys.ioctl(ctx.fd, size > XsaveLayout.size ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, bytes);
    fpu = { kind: 'xsave', bytes: base64(bytes) };
  } else {
    const bytes = new Uint8Array(FpuLayout.size);
    sys.ioctl(ctx.fd, KVM_GET_FPU, bytes);
    fpu = { kind: 'fpu', bytes: base64(bytes) };
  }
  let xcrs: LinuxVcpuState['xcrs'] = null;
  if (capability(ctx.vmFd, KVM_CAP_XCRS) > 0) {
    const bytes = new Uint8Array(XcrsLayout.size);
    sys.ioctl(ctx.fd, KVM_GET_XCRS, bytes);
    const view = new DataView(bytes.buffer);
    const n = Math.min(view.getUint32(XcrsLayout.nr_xcrs, true), KVM_MAX_XCRS);
    xcrs = [];
    for (let i = 0; i < n; i++) {
      const at = XcrsLayout.xcrs + i * XcrLayout.size;
      xcrs.push({
        xcr: view.getUint32(at + XcrLayout.xcr, true),
        value: view.getBigUint64(at + XcrLayout.value, true).toString(),
      });
    }
  }
  let lapic: string | null = null;
  try {
    lapic = base64(ctx.getLapic());
  } catch (error) {
    if (!isErrno(error, 'EINVAL')) throw error; // no in-kernel local APIC
  }
  let events: string | null = null;
  if (capability(ctx.vmFd, KVM_CAP_VCPU_EVENTS) > 0) {
    const bytes = new Uint8Array(VcpuEventsLayout.size);
    sys.ioctl(ctx.fd, KVM_GET_VCPU_EVENTS, bytes);
    events = base64(bytes);
  }
  const mp = new Uint8Array(MpStateLayout.size);
  sys.ioctl(ctx.fd, KVM_GET_MP_STATE, mp);
  return {
    version: LINUX_VCPU_STATE_VERSION,
    id: ctx.id,
    regs: regsState(ctx.getRegs()),
    sregs: sregsState(ctx.getSregs()),
    fpu,
    xcrs,
    msrs: readMsrs(ctx.fd, ctx.msrIndices),
    lapic,
    events,
    mpState: new DataView(mp.buffer).getUint32(MpStateLayout.mp_state, true),
  };
}

/**
 * KVM_GET_MSRS of every index: the kernel stops at the first MSR this vCPU
 * cannot read (one its CPUID does not expose), so read on past it.
 */
function readMsrs(fd: number, indices: readonly number[]): LinuxVcpuState['msrs'] {
  const out: LinuxVcpuState['msrs'] = [];
  let rest = [...indices].sort((a, b) => a - b);
  while (rest.length > 0) {
    const bytes = msrsBuffer(rest.map((index) => ({ index, value: 0n })));
    const n = sys.ioctl(fd, KVM_GET_MSRS, bytes);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < n; i++) {
      const at = MsrsLayout.entries + i * MsrEntryLayout.size;
      out.push({
        index: view.getUint32(at + MsrEntryLayout.index, true),
        value: view.getBigUint64(at + MsrEntryLayout.data, true).toString(),
      });
    }
    rest = rest.slice(n + 1); // skip the one that failed
  }
  return out;
}

function msrsBuffer(entries: readonly { index: number; value: bigint }[]): Uint8Array {
  const bytes = new Uint8Array(MsrsLayout.entries + entries.length * MsrEntryLayout.size);
  const view = new DataView(bytes.buffer);
  view.setUint32(MsrsLayout.nmsrs, entries.length, true);
  entries.forEach((e, i) => {
    const at = MsrsLayout.entries + i * MsrEntryLayout.size;
    view.setUint32(at + MsrEntryLayout.index, e.index, true);
    view.setBigUint64(at + MsrEntryLayout.data, e.value, true);
  });
  return bytes;
}

/**
 * Loads a checked state into a fresh vCPU of a VM restored the same way
 * (`LinuxVm.restoreWiring`): special registers first (the modes the rest
 * depends on), then registers, XCRs, XSAVE, MSRs, the local APIC, the MP state
 * and last the events (what was being injected). The kernel refusing a part
 * (another host CPU, say) is that ioctl's errno, naming the part.
 */
export function loadVcpuState(ctx: VcpuStateContext, state: CheckedVcpuState): void {
  const step = (what: string, fn: () => void) => {
    try {
      fn();
    } catch (error) {
      const code = (error as { code?: string }).code ?? 'EIO';
      throw errnoError(code as 'EIO', `restoring vCPU ${ctx.id}'s ${what}: ${(error as Error).message}`);
    }
  };
  step('special registers', () => ctx.setSregs(state.sregs));
  step('registers', () => ctx.setRegs(state.regs));
  if (state.xcrs) {
    const xcrs = state.xcrs;
    step('XCRs', () => {
      const bytes = new Uint8Array(XcrsLayout.size);
      const view = new DataView(bytes.buffer);
      view.setUint32(XcrsLayout.nr_xcrs, xcrs.length, true);
      xcrs.forEach((x, i) => {
        const at = XcrsLayout.xcrs + i * XcrLayout.size;
        view.setUint32(at + XcrLayout.xcr, x.xcr, true);
        view.setBigUint64(at + XcrLayout.value, x.value, true);
      });
      sys.ioctl(ctx.fd, KVM_SET_XCRS, bytes);
    });
  }
  step(state.fpu.kind === 'xsave' ? 'XSAVE area' : 'FPU', () => {
    if (state.fpu.kind === 'fpu') {
      sys.ioctl(ctx.fd, KVM_SET_FPU, state.fpu.bytes);
      return;
    }
    // KVM_SET_XSAVE reads as many bytes as KVM_CAP_XSAVE2 says: never less than that from us.
    const bytes = new Uint8Array(Math.max(state.fpu.bytes.length, xsaveSize(ctx.vmFd)));
    bytes.set(state.fpu.bytes);
    sys.ioctl(ctx.fd, KVM_SET_XSAVE, bytes);
  });
  step('MSRs', () => {
    const n = sys.ioctl(ctx.fd, KVM_SET_MSRS, msrsBuffer(state.msrs));
    const refused = state.msrs[n];
    if (refused)
      throw errnoError(
        'EINVAL',
        `KVM_SET_MSRS refused MSR 0x${refused.index.toString(16)} (${n} of ${state.msrs.length} set)`,
      );
  });
  if (state.lapic) {
    const lapic = state.lapic;
    step('local APIC', () => ctx.setLapic(lapic));
  }
  step('MP state', () => {
    const mp = new Uint8Array(MpStateLayout.size);
    new DataView(mp.buffer).setUint32(MpStateLayout.mp_state, state.mpState, true);
    sys.ioctl(ctx.fd, KVM_SET_MP_STATE, mp);
  });
  if (state.events) {
    const events = state.events;
    step('vCPU events', () => sys.ioctl(ctx.fd, KVM_SET_VCPU_EVENTS, events));
  }
}

/** A state that passed `checkLinuxVcpuState`: values decoded. */
export interface CheckedVcpuState {
  id: number;
  regs: Regs;
  sregs: Sregs;
  fpu: { kind: 'xsave' | 'fpu'; bytes: Uint8Array };
  xcrs: { xcr: number; value: bigint }[] | null;
  msrs: { index: number; value: bigint }[];
  lapic: Uint8Array | null;
  events: Uint8Array | null;
  mpState: number;
}

/** Checks a state read from a file field by field: `EINVAL` for anything `takeVcpuState` could not have written. */
export function checkLinuxVcpuState(state: unknown): CheckedVcpuState {
  const s = object(state, 'vCPU state');
  if (s.version !== LINUX_VCPU_STATE_VERSION)
    throw bad(`version ${String(s.version)} (this code reads version ${LINUX_VCPU_STATE_VERSION})`);
  const f = object(s.fpu, 'fpu');
  if (f.kind !== 'xsave' && f.kind !== 'fpu') throw bad(`fpu.kind ${JSON.stringify(f.kind)}`);
  const fpuBytes =
    f.kind === 'fpu'
      ? bytes(f.bytes, 'fpu.bytes', FpuLayout.size, FpuLayout.size)
      : bytes(f.bytes, 'fpu.bytes', XsaveLayout.size, 1 << 20);
  let xcrs: CheckedVcpuState['xcrs'] = null;
  if (s.xcrs !== null) {
    xcrs = list(s.xcrs, 'xcrs', KVM_MAX_XCRS).map((v, i) => {
      const x = object(v, `xcrs[${i}]`);
      return { xcr: int(x.xcr, `xcrs[${i}].xcr`, 0, 0xffff_ffff), value: u64(x.value, `xcrs[${i}].value`) };
    });
  }
  const msrs = list(s.msrs, 'msrs', 4096).map((v, i) => {
    const m = object(v, `msrs[${i}]`);
    return {
      index: int(m.index, `msrs[${i}].index`, 0, 0xffff_ffff),
      value: u64(m.value, `msrs[${i}].value`),
    };
  });
  return {
    id: int(s.id, 'id', 0, 0xffff_ffff),
    regs: regsFromState(s.regs),
    sregs: sregsFromState(s.sregs),
    fpu: { kind: f.kind, bytes: fpuBytes },
    xcrs,
    msrs,
    lapic: s.lapic === null ? null : bytes(s.lapic, 'lapic', LapicStateLayout.size, LapicStateLayout.size),
    events:
      s.events === null ? null : bytes(s.events, 'events', VcpuEventsLayout.size, VcpuEventsLayout.size),
    mpState: int(s.mpState, 'mpState', 0, KVM_MP_STATE_SUSPENDED),
  };
}

// ---- registers as plain data ------------------------------------------------------------------

export function regsState(regs: Regs): RegsState {
  return Object.fromEntries(REG_NAMES.map((k) => [k, regs[k].toString()])) as RegsState;
}

function regsFromState(state: unknown): Regs {
  const s = object(state, 'regs');
  return Object.fromEntries(REG_NAMES.map((k) => [k, u64(s[k], `regs.${k}`)])) as unknown as Regs;
}

export function sregsState(sregs: Sregs): SregsState {
  const out: Record<string, unknown> = {};
  for (const k of SEGMENT_NAMES) out[k] = { ...sregs[k], base: sregs[k].base.toString() };
  for (const k of ['gdt', 'idt'] as const) out[k] = { base: sregs[k].base.toString(), limit: sregs[k].limit };
  for (const k of CONTROL_NAMES) out[k] = sregs[k].toString();
  return out as SregsState;
}

function sregsFromState(state: unknown): Sregs {
  const s = object(state, 'sregs');
  const out: Record<string, unknown> = {};
  for (const k of SEGMENT_NAMES) {
    const g = object(s[k], `sregs.${k}`);
    const segment = {
      base: u64(g.base, `sregs.${k}.base`),
      limit: int(g.limit, `sregs.${k}.limit`, 0, 0xffff_ffff),
      selector: int(g.selector, `sregs.${k}.selector`, 0, 0xffff),
    } as Segment;
    for (const f of SEGMENT_BYTES) segment[f] = int(g[f], `sregs.${k}.${f}`, 0, 0xff);
    out[k] = segment;
  }
  for (const k of ['gdt', 'idt'] as const) {
    const t = object(s[k], `sregs.${k}`);
    out[k] = { base: u64(t.base, `sregs.${k}.base`), limit: int(t.limit, `sregs.${k}.limit`, 0, 0xffff) };
  }
  for (const k of CONTROL_NAMES) out[k] = u64(s[k], `sregs.${k}`);
  return out as unknown as Sregs;
}

// ---- field checks ----------------------------------------------------------------------------

function object(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw bad(`${what} is not an object`);
  return value as Record<string, unknown>;
}

function list(value: unknown, what: string, max: number): unknown[] {
  if (!Array.isArray(value) || value.length > max)
    throw bad(`${what} is not a list of at most ${max} entries`);
  return value;
}

function int(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw bad(`${what} = ${JSON.stringify(value)} is not an integer in [${min}, ${max}]`);
  return value;
}

function u64(value: unknown, what: string): bigint {
  if (typeof value !== 'string' || !/^(0|[1-9][0-9]{0,19})$/.test(value) || BigInt(value) >= 1n << 64n)
    throw bad(`${what} = ${JSON.stringify(value)} is not a u64 decimal string`);
  return BigInt(value);
}

/** Base64 of a kernel struct: exactly `min` bytes, or up to `max`. */
export function bytes(value: unknown, what: string, min: number, max: number): Uint8Array {
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0)
    throw bad(`${what} is not base64`);
  const out = new Uint8Array(Buffer.from(value, 'base64'));
  if (out.length < min || out.length > max)
    throw bad(`${what} is ${out.length} bytes, expected ${min === max ? min : `${min} to ${max}`}`);
  return out;
}

export function bad(why: string): Error {
  return errnoError('EINVAL', `bad /dev/kvm state: ${why}`);
}

export { base64 as toBase64 };
