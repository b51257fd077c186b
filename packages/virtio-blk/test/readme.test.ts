import { expect, it } from 'vitest';
import { runExample } from './readme-example.js';

it('the README example runs and prints what the README says', async () => {
  expect(await runExample()).toEqual([
    'capacity 2048 sectors, seg_max 254, size_max 1048576',
    'interrupt 1',
    'write status OK',
    'interrupt 1',
    'read status OK, used 513 bytes: hello, virtio-blk!',
    'file at sector 100: hello, virtio-blk!',
  ]);
});
