import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';

it('the README example is test/readme-example.ts verbatim, and runs', async () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const example = readFileSync(new URL('./readme-example.ts', import.meta.url), 'utf8');
  expect(readme).toContain(example.trim());
  const mod = await import('./readme-example.js');
  expect([mod.word, mod.crossed, mod.refused]).toEqual(['deadbeef', 's!', 'EFAULT']);
});
