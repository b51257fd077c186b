// Unit tests of the QEMU harness's pure parts: console parsing and the disk pattern (which must
// match scripts/guest/blkwork.c word for word, or e2e checks on the host would be meaningless).
import { describe, expect, it } from 'vitest';
import { LineSplitter, parseConsoleLine } from './qemu/console.js';
import { fillPattern, findMismatch } from './qemu/pattern.js';

describe('console parsing', () => {
  it('parses tagged lines anywhere in a line and ignores the rest', () => {
    expect(parseConsoleLine('[    1.2] virtio_blk virtio0: [vda] 131072 512-byte logical blocks')).toBeNull();
    expect(
      parseConsoleLine('\x1b[2JRXVMM-DEVICE {"path":"/dev/vda","bytes":67108864,"readOnly":false}'),
    ).toEqual({
      kind: 'device',
      path: '/dev/vda',
      bytes: 67108864,
      readOnly: false,
    });
    expect(
      parseConsoleLine('RXVMM-BEGIN {"op":"seqread","step":"seqread:1G@/dev/vdb","dev":"/dev/vdb"}'),
    ).toEqual({
      kind: 'begin',
      begin: { op: 'seqread', step: 'seqread:1G@/dev/vdb', dev: '/dev/vdb' },
    });
    expect(
      parseConsoleLine(
        'RXVMM-RESULT {"op":"randread","step":"randread:10","dev":"/dev/vda","ok":true,"bytes":40960,"ops":10,"ns":5}',
      ),
    ).toEqual({
      kind: 'result',
      result: {
        op: 'randread',
        step: 'randread:10',
        dev: '/dev/vda',
        ok: true,
        bytes: 40960,
        ops: 10,
        ns: 5,
      },
    });
    expect(parseConsoleLine('RXVMM-QUEUES {"count":2}')).toEqual({ kind: 'queues', count: 2 });
    expect(parseConsoleLine('RXVMM-FEATURES {"bits":"0110001"}')).toEqual({
      kind: 'features',
      bits: '0110001',
    });
    expect(parseConsoleLine('RXVMM-KLOG {"line":"<3>[    5.1] blk_update_request: I/O error"}')).toEqual({
      kind: 'klog',
      line: '<3>[    5.1] blk_update_request: I/O error',
    });
    expect(parseConsoleLine('RXVMM-DONE {"status":1}')).toEqual({ kind: 'done', status: 1 });
    expect(parseConsoleLine('RXVMM-ERROR {"error":"/dev/vda did not appear"}')).toEqual({
      kind: 'error',
      error: '/dev/vda did not appear',
    });
  });

  it('reports a garbled tagged line as an error instead of dropping it', () => {
    const e = parseConsoleLine('RXVMM-RESULT {"op":"seqr');
    expect(e).toBeNull(); // no closing brace: not a complete tagged line
    expect(parseConsoleLine('RXVMM-RESULT {"op":}')?.kind).toBe('error');
  });

  it('splits chunked \\r\\n output into lines, keeping a partial last line for later', () => {
    const s = new LineSplitter();
    expect(s.push('RXVMM-DO')).toEqual([]);
    expect(s.push('NE {"status":0}\r\nnext')).toEqual(['RXVMM-DONE {"status":0}']);
    expect(s.flush()).toEqual(['next']);
    expect(s.flush()).toEqual([]);
  });
});

describe('disk pattern', () => {
  it('matches blkwork.c: word(i) = i * 2654435761 + seed mod 2^32, i = offset / 4', () => {
    const b = new Uint8Array(16);
    fillPattern(b, 8, 7);
    const v = new DataView(b.buffer);
    for (let k = 0; k < 4; k++)
      expect(v.getUint32(k * 4, true)).toBe(Number((BigInt(2 + k) * 2654435761n + 7n) % 2n ** 32n));
  });

  it('finds the first wrong word by disk offset, and the pattern depends on the offset', () => {
    const b = new Uint8Array(4096);
    fillPattern(b, 1 << 20, 0x2222);
    expect(findMismatch(b, 1 << 20, 0x2222)).toBe(-1);
    expect(findMismatch(b, (1 << 20) + 4096, 0x2222)).toBe((1 << 20) + 4096);
    b[1000] = (b[1000]! ^ 1) & 0xff;
    expect(findMismatch(b, 1 << 20, 0x2222)).toBe((1 << 20) + 1000);
  });
});
