/** The guests' layout (guest/layout.h) agrees with the contract and with setupLongMode's boot area. */
import { CONTRACT_RAM_SIZE, DONE_PORT, READY_REPORT, REPORT_PORT } from '@rxvmm/kvm-contract';
import { describe, expect, it } from 'vitest';
import { BOOT_GDT_ADDR, BOOT_PML4_ADDR, BOOT_TABLES_END } from '../src/index.js';
import { type GuestName, guestBinary, guestEntry, LAYOUT } from './guests.js';

const NAMES: GuestName[] = [
  'mmio-writer',
  'pio-writer',
  'mmio-reader',
  'pio-reader',
  'mmio-sequence',
  'interrupt-waiter',
];

describe('test guests (guest/*.S, built by guest/build.mjs)', () => {
  it('use the contract ports and READY value', () => {
    expect(LAYOUT.reportPort).toBe(REPORT_PORT);
    expect(LAYOUT.donePort).toBe(DONE_PORT);
    expect(LAYOUT.readyReport).toBe(READY_REPORT);
  });

  it('leave setupLongMode its boot area: params and IDT below its tables, code above them', () => {
    const paramsEnd = LAYOUT.paramsBase + 0x100;
    expect(BigInt(paramsEnd)).toBeLessThanOrEqual(BOOT_GDT_ADDR);
    expect(BigInt(0x1000 + 256 * 16)).toBeLessThanOrEqual(BOOT_PML4_ADDR); // IDT_BASE
    expect(BigInt(LAYOUT.codeBase)).toBeGreaterThanOrEqual(BOOT_TABLES_END);
  });

  for (const name of NAMES) {
    it(`${name}: a header with a 64-bit entry inside the binary, below the stack, inside contract RAM`, () => {
      const bin = guestBinary(name);
      const entry = guestEntry(name);
      expect(entry).toBeGreaterThan(BigInt(LAYOUT.codeBase));
      expect(entry).toBeLessThan(BigInt(LAYOUT.codeBase + bin.length));
      expect(BigInt(LAYOUT.codeBase + bin.length)).toBeLessThan(LAYOUT.stackTop - 0x1000n);
      expect(LAYOUT.stackTop).toBeLessThanOrEqual(BigInt(CONTRACT_RAM_SIZE));
    });
  }
});
