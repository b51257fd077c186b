// The addon must load on glibc 2.28 (RHEL 8; Debian 11 and Ubuntu 20.04 have
// 2.31): no dynamic symbol may be bound to a newer GLIBC_ version. Checks the
// addon built here and every prebuild present (after `pnpm pack` or
// scripts/prebuild.mjs), with objdump -T as the dynamic loader would see them.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  compareVersions,
  GLIBC_FLOOR,
  glibcSymbols,
  newestGlibc,
  objdumpMissing,
} from '../scripts/glibc-requirement.mjs';

const packageRoot = fileURLToPath(new URL('..', import.meta.url));
const built = join(packageRoot, 'build', 'Release', 'rxvmm_sys.node');
const prebuildsDir = join(packageRoot, 'prebuilds');
const prebuilds = existsSync(prebuildsDir)
  ? readdirSync(prebuildsDir, { recursive: true, encoding: 'utf8' })
      .filter((name) => name.endsWith('.node'))
      .map((name) => join(prebuildsDir, name))
  : [];

const addons = [...(existsSync(built) ? [built] : []), ...prebuilds];
if (!existsSync(built)) console.warn('sys glibc check: build/Release/rxvmm_sys.node not built');
if (prebuilds.length === 0)
  console.warn('sys glibc check: no prebuilds/ here (pnpm pack makes them); checked the local build only');

describe('the glibc versions the addon needs', () => {
  it('compares versions numerically', () => {
    expect(['2.28', '2.2.5', '2.17', '2.3.4', '2.9'].sort(compareVersions)).toEqual([
      '2.2.5',
      '2.3.4',
      '2.9',
      '2.17',
      '2.28',
    ]);
  });

  for (const file of addons) {
    const name = file.slice(packageRoot.length);
    const missing = objdumpMissing(file);
    if (missing) console.warn(`sys glibc check of ${name} skipped: ${missing}`);
    it.skipIf(missing !== undefined)(`${name} needs at most GLIBC_${GLIBC_FLOOR}`, () => {
      const versions = glibcSymbols(file);
      // Sanity: objdump read a dynamically linked file and found its libc symbols.
      expect(versions.flatMap((v) => v.symbols)).toContain('eventfd');
      const newest = newestGlibc(file);
      expect(
        compareVersions(newest.version, GLIBC_FLOOR),
        `GLIBC_${newest.version} needed by ${newest.symbols.join(', ')}`,
      ).toBeLessThanOrEqual(0);
    });
  }
});
