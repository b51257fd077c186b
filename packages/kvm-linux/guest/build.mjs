#!/usr/bin/env node
// Builds the test guests from source: each guest/<name>.S is assembled with
// GNU as (through gcc, for the C preprocessor) together with the long-mode
// prologue, linked at CODE_BASE with guest.ld, and flattened with objcopy to
// build/guests/<name>.bin. layout.json records layout.h's constants so the
// TypeScript side can check it agrees. Only binutils + gcc are needed.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const guestDir = dirname(fileURLToPath(import.meta.url));
const outDir = join(guestDir, '..', 'build', 'guests');
mkdirSync(outDir, { recursive: true });

const run = (cmd, args) => execFileSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
const cc = process.env.CC ?? 'gcc';
const asFlags = [
  '-c',
  '-nostdlib',
  '-ffreestanding',
  '-Wa,--fatal-warnings',
  '-I',
  guestDir,
  '-I',
  join(guestDir, 'include'), // rxvmm/x86.h, the header the package ships for guests
];

const prologue = join(outDir, 'long-mode.o');
run(cc, [...asFlags, '-o', prologue, join(guestDir, 'long-mode.S')]);

const guests = readdirSync(guestDir).filter((f) => f.endsWith('.S') && f !== 'long-mode.S');
for (const file of guests) {
  const name = file.slice(0, -2);
  const obj = join(outDir, `${name}.o`);
  const elf = join(outDir, `${name}.elf`);
  run(cc, [...asFlags, '-o', obj, join(guestDir, file)]);
  run('ld', ['-nostdlib', '-static', '-T', join(guestDir, 'guest.ld'), '-o', elf, prologue, obj]);
  run('objcopy', ['-O', 'binary', elf, join(outDir, `${name}.bin`)]);
}

const layout = {};
for (const m of readFileSync(join(guestDir, 'layout.h'), 'utf8').matchAll(
  /^#define\s+(\w+)\s+(0x[0-9a-f]+|\d+)/gim,
)) {
  layout[m[1]] = Number(m[2]);
}
writeFileSync(
  join(outDir, 'layout.json'),
  `${JSON.stringify({ guests: guests.map((f) => f.slice(0, -2)), layout }, null, 2)}\n`,
);
console.log(`guests: built ${guests.length} into ${outDir}`);
