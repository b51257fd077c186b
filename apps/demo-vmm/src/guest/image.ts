/** The demo guest binary built by guest/build.sh (the package's build runs it). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DiskError } from '../disk.js';

/** Same path from src/guest/ and dist/guest/. */
export const GUEST_IMAGE_URL = new URL('../../build/guests/blk-guest.bin', import.meta.url);

export function loadGuestImage(): Uint8Array {
  try {
    return readFileSync(GUEST_IMAGE_URL);
  } catch {
    throw new DiskError(
      `guest image ${fileURLToPath(GUEST_IMAGE_URL)} is missing: build @rxvmm/demo-vmm first (pnpm build)`,
    );
  }
}
