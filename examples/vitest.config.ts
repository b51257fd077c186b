import { defineConfig } from 'vitest/config';

// The examples run as a user runs them: built JavaScript (dist/, by `tsc -p tsconfig.build.json`)
// in a child process, against the packages' built entry points (no development condition).
export default defineConfig({
  test: { include: ['test/**/*.test.ts'], testTimeout: 60_000 },
});
