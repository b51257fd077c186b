import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GuestMemory } from '@rxvmm/guest-memory';
import { describe, expect, it } from 'vitest';
import {
  BOOT_INFO_ADDR,
  BOOT_INFO_FIELDS,
  BOOT_INFO_MAGIC,
  BOOT_INFO_SIZE,
  DONE_PORT,
  GUEST_LOAD_ADDR,
  HELLO_PORT,
  RESULT_FIELDS,
  RESULTS_ADDR,
  readResults,
  writeBootInfo,
} from './abi.js';

const guestDir = fileURLToPath(new URL('../../guest', import.meta.url));

/** Compiles a C program against guest/abi.h and returns what it prints. */
function cFacts(): Record<string, number | string> {
  const dir = mkdtempSync(join(tmpdir(), 'rxvmm-abi-'));
  try {
    const src = join(dir, 'facts.c');
    writeFileSync(
      src,
      `#include <stdio.h>
#include <stddef.h>
#include "abi.h"
int main(void) {
  printf("{\\"load\\":%d,\\"magic\\":\\"%llx\\",\\"hello\\":%d,\\"done\\":%d,", GUEST_LOAD_ADDR,
         (unsigned long long)BOOT_INFO_MAGIC, HELLO_PORT, DONE_PORT);
  printf("\\"bootInfoSize\\":%zu,\\"resultsSize\\":%zu,", sizeof(struct boot_info), sizeof(struct results));
  printf("\\"queueSize\\":%zu,\\"interrupts\\":%zu}", offsetof(struct boot_info, queue_size),
         offsetof(struct results, interrupts));
  return 0;
}
`,
    );
    execFileSync('cc', ['-I', guestDir, src, '-o', join(dir, 'facts')]);
    return JSON.parse(execFileSync(join(dir, 'facts'), { encoding: 'utf8' }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('guest ABI', () => {
  it('matches guest/abi.h as the C compiler lays it out', () => {
    const c = cFacts();
    expect(c.load).toBe(Number(GUEST_LOAD_ADDR));
    expect(BigInt(`0x${c.magic}`)).toBe(BOOT_INFO_MAGIC);
    expect(c.hello).toBe(HELLO_PORT);
    expect(c.done).toBe(DONE_PORT);
    expect(c.bootInfoSize).toBe(BOOT_INFO_SIZE);
    expect(c.resultsSize).toBe(RESULT_FIELDS.length * 8);
    expect(c.queueSize).toBe(BOOT_INFO_FIELDS.indexOf('queueSize') * 8);
    expect(c.interrupts).toBe(RESULT_FIELDS.indexOf('interrupts') * 8);
  });

  it('writes boot_info little-endian and reads results after it', () => {
    const ram = new Uint8Array(1 << 20);
    const info = Object.fromEntries(BOOT_INFO_FIELDS.map((f, i) => [f, BigInt(i) * 0x0101n])) as Parameters<
      typeof writeBootInfo
    >[1];
    const memory = new GuestMemory([{ guestPhysAddr: 0n, bytes: ram }]);
    writeBootInfo(memory, info);
    const view = new DataView(ram.buffer);
    expect(view.getBigUint64(Number(BOOT_INFO_ADDR) + 8, true)).toBe(0x0101n);
    view.setBigUint64(Number(RESULTS_ADDR) + 16, 42n, true);
    expect(readResults(memory).verified).toBe(42n);
  });
});
