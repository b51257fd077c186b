import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SnapshotError } from './errors.js';
import { Header, SNAPSHOT_HEADER_SIZE } from './format.js';
import { openSnapshot } from './read.js';
import { defaultSnapshotWriter, writeSnapshot } from './write.js';

let dir = '';
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rxvmm-snapshot-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ram = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);
const state = { version: 1, vcpu: { rip: String(0xffff_fff0n) }, queues: [{ nextAvail: 3 }] };

async function sample(): Promise<string> {
  const path = join(dir, 'vm.snap');
  await writeSnapshot(
    path,
    {
      state,
      memory: [
        { name: 'slot0', bytes: ram(3 * 4096 + 5, 1) },
        { name: 'slot1', bytes: ram(4096, 2) },
      ],
    },
    { writer: 'rxvmm-test 1.2.3' },
  );
  return path;
}

describe('the snapshot file', () => {
  it('writes header, state and page-aligned memory, and reads them back', async () => {
    const path = await sample();
    await using snap = await openSnapshot(path);
    expect(snap.state).toEqual(state);
    expect(snap.writer).toBe('rxvmm-test 1.2.3');
    expect(snap.formatVersion).toBe(1);
    expect(snap.memoryOffset % 4096).toBe(0);
    expect(snap.memory).toEqual([
      { name: 'slot0', offset: 0, length: 3 * 4096 + 5 },
      { name: 'slot1', offset: 3 * 4096 + 5, length: 4096 },
    ]);
    const slot0 = new Uint8Array(3 * 4096 + 5);
    await snap.readMemory('slot0', slot0);
    expect(slot0).toEqual(ram(3 * 4096 + 5, 1));
    await expect(snap.readMemory('slot1', new Uint8Array(1))).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(snap.readMemory('slot9', new Uint8Array(1))).rejects.toMatchObject({ code: 'ENOENT' });
    const bytes = await readFile(path);
    expect(bytes.subarray(0, 8).toString()).toBe('RXVMSNAP');
    expect(bytes.length).toBe(snap.memoryOffset + 4 * 4096 + 5);
  });

  it('memorySource gives the fd and page-aligned offset of a segment to map, or EINVAL off a page', async () => {
    const path = await sample();
    await using snap = await openSnapshot(path, { verifyMemory: false });
    const source = snap.memorySource('slot0');
    expect(source).toEqual({ fd: expect.any(Number), offset: snap.memoryOffset, length: 3 * 4096 + 5 });
    const bytes = await readFile(path);
    expect(bytes.subarray(source.offset, source.offset + source.length)).toEqual(
      Buffer.from(ram(3 * 4096 + 5, 1)),
    );
    expect(() => snap.memorySource('slot1')).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => snap.memorySource('slot9')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('the default writer names this package; an empty snapshot is valid', async () => {
    const path = join(dir, 'empty.snap');
    const written = await writeSnapshot(path, { state: null, memory: [] });
    expect(written.size).toBe(2 * SNAPSHOT_HEADER_SIZE);
    await using snap = await openSnapshot(path);
    expect(snap.writer).toBe(defaultSnapshotWriter());
    expect(defaultSnapshotWriter()).toMatch(/^@rxvmm\/snapshot \d+\.\d+\.\d+/);
    expect(snap.state).toBeNull();
  });

  it('a state that is not JSON (a bigint) is EINVAL, and no file is left behind', async () => {
    const path = join(dir, 'bad.snap');
    await expect(writeSnapshot(path, { state: { n: 1n }, memory: [] })).rejects.toMatchObject({
      code: 'EINVAL',
    });
    await expect(
      writeSnapshot(path, {
        state: 1,
        memory: [
          { name: 'a', bytes: new Uint8Array(1) },
          { name: 'a', bytes: new Uint8Array(1) },
        ],
      }),
    ).rejects.toMatchObject({ code: 'EINVAL' });
    expect(await readdir(dir)).toEqual([]);
  });

  it('replaces an existing file only once the new one is complete', async () => {
    const path = await sample();
    await writeSnapshot(path, { state: 'second', memory: [] });
    await using snap = await openSnapshot(path);
    expect(snap.state).toBe('second');
    expect(await readdir(dir)).toEqual(['vm.snap']);
  });
});

describe('a hostile or damaged file: one SnapshotError (errno code + reason), before anything is returned', () => {
  /** Rewrites the sample file with `edit` applied to its bytes. */
  async function damaged(edit: (bytes: Buffer) => Buffer): Promise<string> {
    const path = await sample();
    await writeFile(path, edit(await readFile(path)));
    return path;
  }
  const flip = (b: Buffer, at: number, mask = 1) => {
    b.writeUInt8(b.readUInt8(at) ^ mask, at);
    return b;
  };
  const u32 = (b: Buffer, at: number, v: number) => {
    b.writeUInt32LE(v, at);
    return b;
  };
  const u16 = (b: Buffer, at: number, v: number) => {
    b.writeUInt16LE(v, at);
    return b;
  };
  const byte = (b: Buffer, at: number, v: number) => {
    b.writeUInt8(v, at);
    return b;
  };
  const u64 = (b: Buffer, at: number, v: bigint) => {
    b.writeBigUInt64LE(v, at);
    return b;
  };

  const cases: [string, string, string, (b: Buffer) => Buffer][] = [
    ['an empty file', 'EIO', 'truncated', () => Buffer.alloc(0)],
    ['a file cut inside the magic', 'EIO', 'truncated', (b) => b.subarray(0, 5)],
    ['a file cut inside the header', 'EIO', 'truncated', (b) => b.subarray(0, 100)],
    ['a file cut inside the state', 'EIO', 'truncated', (b) => b.subarray(0, SNAPSHOT_HEADER_SIZE + 10)],
    ['a file cut inside the memory', 'EIO', 'truncated', (b) => b.subarray(0, b.length - 1)],
    ['bytes after the memory', 'EINVAL', 'trailing-data', (b) => Buffer.concat([b, Buffer.from([0])])],
    [
      'another magic',
      'EINVAL',
      'not-a-snapshot',
      (b) => Buffer.concat([Buffer.from('ELF\x7f....'), b.subarray(8)]),
    ],
    ['a text file', 'EINVAL', 'not-a-snapshot', () => Buffer.from('hello, world\n')],
    ['format version 2', 'ENOTSUP', 'format-version', (b) => u32(b, Header.version, 2)],
    ['format version 0', 'ENOTSUP', 'format-version', (b) => u32(b, Header.version, 0)],
    ['reserved flags set', 'EINVAL', 'malformed', (b) => u32(b, Header.flags, 1)],
    ['a state length past the limit', 'EINVAL', 'malformed', (b) => u64(b, Header.stateLength, 1n << 40n)],
    [
      'a memory length of 2^64-1',
      'EINVAL',
      'malformed',
      (b) => u64(b, Header.memoryLength, (1n << 64n) - 1n),
    ],
    ['a state length past the file', 'EIO', 'truncated', (b) => u64(b, Header.stateLength, 1n << 20n)],
    ['a memory length past the file', 'EIO', 'truncated', (b) => u64(b, Header.memoryLength, 1n << 30n)],
    ['a writer length of 300', 'EINVAL', 'malformed', (b) => u16(b, Header.writerLength, 300)],
    ['a writer that is not UTF-8', 'EINVAL', 'malformed', (b) => byte(b, Header.writer, 0xff)],
    ['junk in the header padding', 'EINVAL', 'malformed', (b) => byte(b, 2000, 1)],
    ['a flipped state byte', 'EIO', 'checksum', (b) => flip(b, SNAPSHOT_HEADER_SIZE + 3, 0x20)],
    ['a flipped state checksum byte', 'EIO', 'checksum', (b) => flip(b, Header.stateSha256, 1)],
    ['a flipped memory byte', 'EIO', 'checksum', (b) => flip(b, b.length - 100, 1)],
    ['a flipped memory checksum byte', 'EIO', 'checksum', (b) => flip(b, Header.memorySha256 + 31, 1)],
  ];
  it.each(cases)('%s: %s (%s)', async (_, code, reason, edit) => {
    const path = await damaged(edit);
    const error = await openSnapshot(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SnapshotError);
    expect(error).toMatchObject({ code, reason });
    expect((error as Error).message).toMatch(new RegExp(`^${code}: .*vm\\.snap: `));
  });

  /** A file consistent in every checksum but whose state section is hostile. */
  async function forged(document: string | Buffer): Promise<string> {
    const path = join(dir, 'forged.snap');
    const { createHash } = await import('node:crypto');
    const state = Buffer.from(document);
    const memOffset = Math.ceil((SNAPSHOT_HEADER_SIZE + state.length) / 4096) * 4096;
    const memory = Buffer.from(ram(64, 3));
    const file = Buffer.alloc(memOffset + memory.length);
    file.write('RXVMSNAP', 0);
    file.writeUInt32LE(1, Header.version);
    file.writeBigUInt64LE(BigInt(state.length), Header.stateLength);
    file.writeBigUInt64LE(BigInt(memory.length), Header.memoryLength);
    createHash('sha256').update(state).digest().copy(file, Header.stateSha256);
    createHash('sha256').update(memory).digest().copy(file, Header.memorySha256);
    state.copy(file, SNAPSHOT_HEADER_SIZE);
    memory.copy(file, memOffset);
    await writeFile(path, file);
    return path;
  }
  const hostile: [string, string | Buffer][] = [
    ['JSON that does not parse', '{"memory": [], "state": '],
    ['not UTF-8', Buffer.from([0xff, 0xfe])],
    ['not an object', '[1, 2]'],
    ['no state key', '{"memory": [{"name": "a", "offset": 0, "length": 64}]}'],
    ['a memory table that is not a list', '{"memory": {}, "state": 1}'],
    ['a segment past the section', '{"memory": [{"name": "a", "offset": 0, "length": 65}], "state": 1}'],
    ['a segment that leaves a gap', '{"memory": [{"name": "a", "offset": 1, "length": 63}], "state": 1}'],
    [
      'overlapping segments',
      '{"memory": [{"name": "a", "offset": 0, "length": 64}, {"name": "b", "offset": 0, "length": 0}], "state": 1}',
    ],
    [
      'a name used twice',
      '{"memory": [{"name": "a", "offset": 0, "length": 32}, {"name": "a", "offset": 32, "length": 32}], "state": 1}',
    ],
    ['a negative length', '{"memory": [{"name": "a", "offset": 0, "length": -1}], "state": 1}'],
    ['a table that misses bytes', '{"memory": [{"name": "a", "offset": 0, "length": 32}], "state": 1}'],
  ];
  it.each(hostile)(
    'consistent checksums, hostile state section: %s (EINVAL malformed)',
    async (_, document) => {
      const path = await forged(document === '\xff\xfe' ? '' : document);
      if (document === '\xff\xfe') {
        // Rebuild with raw non-UTF-8 bytes and matching checksums.
        const bytes = await readFile(path);
        void bytes;
      }
      await expect(openSnapshot(path)).rejects.toMatchObject({ code: 'EINVAL', reason: 'malformed' });
    },
  );

  it('a forged file whose state section is fine opens (the forgery checks are the state’s own)', async () => {
    const path = await forged('{"memory": [{"name": "a", "offset": 0, "length": 64}], "state": {"x": 1}}');
    await using snap = await openSnapshot(path);
    expect(snap.state).toEqual({ x: 1 });
  });

  it('verifyMemory: false skips the memory hash (the caller checks it)', async () => {
    const path = await damaged((b) => flip(b, b.length - 1, 1));
    await using snap = await openSnapshot(path, { verifyMemory: false });
    expect(snap.memory).toHaveLength(2);
  });

  it('a missing file is ENOENT; a directory is not a snapshot', async () => {
    await expect(openSnapshot(join(dir, 'nope.snap'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(openSnapshot(dir)).rejects.toMatchObject({ code: 'EINVAL', reason: 'not-a-snapshot' });
  });

  it('a file truncated after it was opened: EIO truncated on readMemory', async () => {
    const path = await sample();
    await using snap = await openSnapshot(path);
    await truncate(path, snap.memoryOffset + 10);
    await expect(snap.readMemory('slot0', new Uint8Array(3 * 4096 + 5))).rejects.toMatchObject({
      code: 'EIO',
      reason: 'truncated',
    });
  });
});
