#!/usr/bin/env bash
# Scaffolds packages/<name> (or apps/<name> with --app) with the workspace's package shape.
set -euo pipefail
dir=packages
if [ "${1:-}" = "--app" ]; then dir=apps; shift; fi
name=$1; desc=${2:-}
root=$(cd "$(dirname "$0")/.." && pwd)
p="$root/$dir/$name"
mkdir -p "$p/src"
[ -f "$p/package.json" ] || cat > "$p/package.json" <<JSON
{
  "name": "@rxvmm/$name",
  "version": "0.0.0",
  "description": "$desc",
  "type": "module",
  "license": "MIT",
  "keywords": ["rxvmm", "vmm", "virtualization"],
  "repository": { "type": "git", "url": "git+https://github.com/rxvmm/rxvmm.git", "directory": "$dir/$name" },
  "engines": { "node": "^20.5.0 || ^22.0.0 || ^24.0.0" },
  "sideEffects": false,
  "exports": {
    ".": {
      "development": "./src/index.ts",
      "types": "./dist/index.d.ts",
      "default": "./dist/index.js"
    }
  },
  "publishConfig": {
    "access": "public",
    "exports": {
      ".": { "types": "./dist/index.d.ts", "default": "./dist/index.js" }
    }
  },
  "files": ["dist", "!dist/**/*.test.*", "!dist/**/*.bench.*", "README.md", "CHANGELOG.md"],
  "scripts": {
    "build": "tsc -p tsconfig.build.json",
    "typecheck": "tsc --noEmit",
    "test": "vitest run --reporter=default --reporter=json --outputFile.json=.test-results.json"
  }
}
JSON
[ -f "$p/tsconfig.json" ] || cat > "$p/tsconfig.json" <<JSON
{
  "extends": "../../tsconfig.base.json",
  "compilerOptions": { "customConditions": ["development"], "noEmit": true, "rootDir": "\${configDir}" },
  "include": ["src", "test", "bench", "vitest.config.ts"]
}
JSON
[ -f "$p/tsconfig.build.json" ] || cat > "$p/tsconfig.build.json" <<JSON
{
  "extends": "../../tsconfig.base.json",
  "include": ["src"],
  "exclude": ["src/**/*.test.ts", "src/**/*.bench.ts", "src/test-support/**"]
}
JSON
[ -f "$p/vitest.config.ts" ] || cat > "$p/vitest.config.ts" <<'TS'
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['development'] },
  ssr: { resolve: { conditions: ['development'] } },
  test: { include: ['src/**/*.test.ts', 'test/**/*.test.ts'], testTimeout: 20_000 },
});
TS
echo "scaffolded $p"
