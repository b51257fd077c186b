import type { Regs, Segment, Sregs } from '@rxvmm/kvm';

/** Register state after vCPU reset (as KVM_CREATE_VCPU leaves it on x86). */
export function resetRegs(): Regs {
  return {
    rax: 0n,
    rbx: 0n,
    rcx: 0n,
    rdx: 0n,
    rsi: 0n,
    rdi: 0n,
    rsp: 0n,
    rbp: 0n,
    r8: 0n,
    r9: 0n,
    r10: 0n,
    r11: 0n,
    r12: 0n,
    r13: 0n,
    r14: 0n,
    r15: 0n,
    rip: 0xfff0n,
    rflags: 0x2n,
  };
}

function segment(selector: number, base: bigint, type: number, s = 1): Segment {
  return {
    base,
    limit: 0xffff,
    selector,
    type,
    present: 1,
    dpl: 0,
    db: 0,
    s,
    l: 0,
    g: 0,
    avl: 0,
    unusable: 0,
  };
}

export function resetSregs(): Sregs {
  return {
    cs: segment(0xf000, 0xffff_0000n, 11),
    ds: segment(0, 0n, 3),
    es: segment(0, 0n, 3),
    fs: segment(0, 0n, 3),
    gs: segment(0, 0n, 3),
    ss: segment(0, 0n, 3),
    tr: segment(0, 0n, 11, 0),
    ldt: segment(0, 0n, 2, 0),
    gdt: { base: 0n, limit: 0xffff },
    idt: { base: 0n, limit: 0xffff },
    cr0: 0x6000_0010n,
    cr2: 0n,
    cr3: 0n,
    cr4: 0n,
    cr8: 0n,
    efer: 0n,
    apicBase: 0xfee0_0900n,
  };
}

export function cloneSregs(s: Sregs): Sregs {
  return structuredClone(s);
}
