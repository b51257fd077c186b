import { expect, it } from 'vitest';
import { main } from './readme-example.js';

it('the README example runs and prints what the README shows', async () => {
  const lines: string[] = [];
  await main((l) => lines.push(l));
  expect(lines).toEqual([
    'acked features 0x140000000',
    'reply: HELLO, VHOST-USER',
    'next avail index after stop: 1',
    'vhost-user: frontend session closed: back-end shutting down',
  ]);
});
