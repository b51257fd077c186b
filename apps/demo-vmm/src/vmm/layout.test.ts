import { IOEVENTFD_FLAG_DATAMATCH } from '@rxvmm/kvm';
import { describe, expect, it } from 'vitest';
import { IOEVENTFD_DATAMATCH } from './layout.js';

describe('layout', () => {
  it('uses the backend interface value of IOEVENTFD_FLAG_DATAMATCH', () => {
    expect(IOEVENTFD_DATAMATCH).toBe(IOEVENTFD_FLAG_DATAMATCH);
  });
});
