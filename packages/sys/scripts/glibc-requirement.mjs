// The newest glibc symbol version an ELF addon needs, read with binutils'
// objdump: the dynamic loader refuses the file on a glibc older than that.
// Shared by the pack-time prebuild check and the tests.
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readSync } from 'node:fs';

/** The oldest glibc the prebuilt addon supports: RHEL 8's (Debian 11 and Ubuntu 20.04 have 2.31), as Node 20+ itself. */
export const GLIBC_FLOOR = '2.28';

// ELF e_machine values of the targets we ship, and the GNU triple of their binutils.
const MACHINES = {
  62: { arch: 'x64', triple: 'x86_64-linux-gnu' },
  183: { arch: 'arm64', triple: 'aarch64-linux-gnu' },
};

/** `'x64'`, `'arm64'` or `undefined`, from the ELF header's e_machine (little-endian ELF64). */
export function elfArch(file) {
  const header = Buffer.alloc(20);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, header, 0, 20, 0);
  } finally {
    closeSync(fd);
  }
  if (header.readUInt32BE(0) !== 0x7f454c46) return undefined;
  return MACHINES[header.readUInt16LE(18)]?.arch;
}

/** The objdump that reads `file`: the host's for its own architecture, `<triple>-objdump` for another. */
export function objdumpFor(file) {
  const arch = elfArch(file);
  if (arch === undefined) throw new Error(`${file}: not an x86-64 or aarch64 ELF file`);
  if (arch === process.arch) return 'objdump';
  return `${Object.values(MACHINES).find((m) => m.arch === arch).triple}-objdump`;
}

/** Why objdump cannot read `file` here, or `undefined` when it can. */
export function objdumpMissing(file) {
  const tool = objdumpFor(file);
  try {
    execFileSync(tool, ['--version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return `${tool} not found (install binutils${tool === 'objdump' ? '' : `-${tool.slice(0, -'-objdump'.length)}`})`;
  }
}

/** Orders dotted versions numerically: 2.9 < 2.17 < 2.28. */
export function compareVersions(a, b) {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Every `GLIBC_x.y` version `file`'s dynamic symbols are bound to, each with its symbols, oldest first. */
export function glibcSymbols(file) {
  const table = execFileSync(objdumpFor(file), ['-T', file], { encoding: 'utf8' });
  const byVersion = new Map();
  for (const line of table.split('\n')) {
    const match = /\(GLIBC_([0-9.]+)\)\s+(\S+)\s*$/.exec(line);
    if (!match) continue;
    const [, version, symbol] = match;
    byVersion.set(version, [...(byVersion.get(version) ?? []), symbol]);
  }
  return [...byVersion.entries()]
    .sort(([a], [b]) => compareVersions(a, b))
    .map(([version, symbols]) => ({ version, symbols }));
}

/** The newest glibc version `file` needs, with the symbols that need it. */
export function newestGlibc(file) {
  const all = glibcSymbols(file);
  return all[all.length - 1] ?? { version: '0', symbols: [] };
}
