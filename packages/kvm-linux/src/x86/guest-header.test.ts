// guest/include/rxvmm/x86.h carries the numbers of the TypeScript exports: checked here, and its C
// half compiled freestanding (the interrupt-waiter test guest assembles its macros).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { IDT_GATE_BYTES } from './idt.js';
import { APIC_LVT_MASKED, APIC_SVR_ENABLE, IOAPIC_BASE, LAPIC_BASE, LapicRegister } from './local-apic.js';
import { GDT_CODE64_SELECTOR } from './long-mode.js';
import { BOOT_GDT_ADDR, BOOT_IDT_ADDR, BOOT_PML4_ADDR, FREE_MEMORY_START } from './memory-map.js';

const include = fileURLToPath(new URL('../../guest/include', import.meta.url));
const header = readFileSync(join(include, 'rxvmm/x86.h'), 'utf8');
const defines = Object.fromEntries(
  [...header.matchAll(/^#define\s+(RXVMM_\w+)\s+(0x[0-9a-f]+|\d+)/gim)].map((m) => [m[1], Number(m[2])]),
);
const cc = process.env.CC ?? 'gcc';
const noCompiler = spawnSync(cc, ['--version']).status !== 0;

describe('guest/include/rxvmm/x86.h', () => {
  it('defines the same numbers as the TypeScript exports', () => {
    expect(defines).toEqual({
      RXVMM_BOOT_GDT_ADDR: Number(BOOT_GDT_ADDR),
      RXVMM_BOOT_IDT_ADDR: Number(BOOT_IDT_ADDR),
      RXVMM_BOOT_PML4_ADDR: Number(BOOT_PML4_ADDR),
      RXVMM_FREE_MEMORY_START: Number(FREE_MEMORY_START),
      RXVMM_CODE64_SELECTOR: GDT_CODE64_SELECTOR,
      RXVMM_LAPIC_BASE: Number(LAPIC_BASE),
      RXVMM_LAPIC_REG_TPR: LapicRegister.TPR,
      RXVMM_LAPIC_REG_EOI: LapicRegister.EOI,
      RXVMM_LAPIC_REG_SVR: LapicRegister.SVR,
      RXVMM_LAPIC_REG_LVT_LINT0: LapicRegister.LVT_LINT0,
      RXVMM_LAPIC_REG_LVT_LINT1: LapicRegister.LVT_LINT1,
      RXVMM_APIC_SVR_ENABLE: APIC_SVR_ENABLE,
      RXVMM_APIC_LVT_MASKED: APIC_LVT_MASKED,
      RXVMM_IOAPIC_BASE: Number(IOAPIC_BASE),
      RXVMM_IDT_GATE_BYTES: IDT_GATE_BYTES,
      RXVMM_IDT_INTERRUPT_GATE: 0x8e,
    });
  });

  it.skipIf(noCompiler)('compiles as freestanding C with -Wall -Wextra -Werror, and as assembly', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rxvmm-x86-h-'));
    try {
      writeFileSync(
        join(dir, 'use.c'),
        `#include <rxvmm/x86.h>
static struct rxvmm_idt_gate idt[256];
void handler(void);
void f(void) {
  rxvmm_idt_set_gate(idt, 0x40, handler);
  rxvmm_lidt(idt, 256);
  rxvmm_lapic_enable(0xff);
  rxvmm_ioapic_route(5, 0x40, 1);
  rxvmm_lapic_eoi();
}
`,
      );
      writeFileSync(
        join(dir, 'use.S'),
        `#include <rxvmm/x86.h>
	.text
f:	rxvmm_idt_fill 0x1000, stubs, 16
	rxvmm_lapic_enable 0xfe
	rxvmm_lapic_eoi
	ret
stubs:	iretq
`,
      );
      const flags = ['-c', '-ffreestanding', '-nostdlib', '-Wall', '-Wextra', '-Werror', '-I', include];
      execFileSync(cc, [...flags, '-O2', '-o', join(dir, 'c.o'), join(dir, 'use.c')], { stdio: 'pipe' });
      execFileSync(cc, [...flags, '-Wa,--fatal-warnings', '-o', join(dir, 's.o'), join(dir, 'use.S')], {
        stdio: 'pipe',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
