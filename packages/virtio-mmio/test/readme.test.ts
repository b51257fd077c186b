import { expect, it } from 'vitest';
import { runExample } from './readme-example.js';

it('the README example runs and prints what the README says', () => {
  expect(runExample()).toEqual([
    'magic=0x74726976 version=2 device=42',
    'activated features=0x100000000 queue0 size=64 desc=0x10000',
    'config counter=7',
    'interrupt bits=1 status=1',
    'InterruptStatus=1',
    'status=0xf',
  ]);
});
