import { defineConfig } from 'vitest/config';

// site.test.ts builds the site (TypeDoc, once per change of its inputs) before its tests run.
export default defineConfig({
  test: { include: ['test/**/*.test.ts'], testTimeout: 60_000, hookTimeout: 60_000 },
});
