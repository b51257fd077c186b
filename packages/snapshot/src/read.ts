/**
 * Opens a snapshot file (format.ts) and checks all of it before handing
 * anything out: the header's fields against each other and the file's size,
 * the padding, the state's checksum and JSON, the memory table, and (unless
 * told not to) the memory's checksum. A file that fails any check is one
 * `SnapshotError`; nothing was built from it.
 */
import { createHash } from 'node:crypto';
import { type FileHandle, open } from 'node:fs/promises';
import { errnoError } from '@rxvmm/errno';
import { SnapshotError } from './errors.js';
import {
  Header,
  type MemorySegmentEntry,
  memoryOffset,
  SNAPSHOT_FORMAT_VERSION,
  SNAPSHOT_HEADER_SIZE,
  SNAPSHOT_MAGIC,
  SNAPSHOT_STATE_MAX,
  SNAPSHOT_WRITER_MAX,
} from './format.js';

/** Options of `openSnapshot`. */
export interface OpenSnapshotOptions {
  /**
   * Hash the memory section and compare it with the header before returning (default true). Off,
   * the memory's integrity is not checked: for a caller that maps or checks it itself.
   */
  verifyMemory?: boolean;
}

const MAGIC = new TextEncoder().encode(SNAPSHOT_MAGIC);
const CHUNK = 1 << 20;

/** Where a memory segment lies in the open file, for a private mapping of it (`SnapshotFile.memorySource`). */
export interface SnapshotMemorySource {
  /** The snapshot's open descriptor (read-only), valid until the `SnapshotFile` is closed. */
  fd: number;
  /** The segment's offset in the file: page-aligned. */
  offset: number;
  length: number;
}

const PAGE_SIZE = 4096;

/** An open, checked snapshot: its state, and its memory to copy out or map. */
export class SnapshotFile {
  readonly path: string;
  readonly formatVersion: number;
  /** Who wrote it (the header's writer string). */
  readonly writer: string;
  /** The state as written (plain JSON data). */
  readonly state: unknown;
  /** The memory segments, in file order. */
  readonly memory: readonly MemorySegmentEntry[];
  /** The file's size in bytes. */
  readonly size: number;
  /** Where the memory section starts in the file (page-aligned). */
  readonly memoryOffset: number;
  readonly #fh: FileHandle;

  /** @internal */
  constructor(
    fields: Omit<SnapshotFile, 'readMemory' | 'memorySource' | 'close' | typeof Symbol.asyncDispose>,
    fh: FileHandle,
  ) {
    this.path = fields.path;
    this.formatVersion = fields.formatVersion;
    this.writer = fields.writer;
    this.state = fields.state;
    this.memory = fields.memory;
    this.size = fields.size;
    this.memoryOffset = fields.memoryOffset;
    this.#fh = fh;
  }

  /** Copies memory segment `name` into `target` (exactly its length: `EINVAL` otherwise). */
  async readMemory(name: string, target: Uint8Array): Promise<void> {
    const segment = this.#segment(name);
    if (target.byteLength !== segment.length)
      throw errnoError(
        'EINVAL',
        `memory segment ${name} is ${segment.length} bytes, the target ${target.byteLength}`,
      );
    await readExactly(this.#fh, target, this.memoryOffset + segment.offset, this.path);
  }

  /**
   * The file descriptor and page-aligned offset of memory segment `name`, to map it privately
   * (copy-on-write) instead of copying it: kvm-linux's `source` of a memory slot. A segment that does
   * not start on a page is `EINVAL` (the writer puts the section on a page; segments of whole pages
   * keep it). The mapping reads the file as it is then: the size was checked at open, but
   * the memory's checksum only if `verifyMemory` was on.
   */
  memorySource(name: string): SnapshotMemorySource {
    const segment = this.#segment(name);
    const offset = this.memoryOffset + segment.offset;
    if (offset % PAGE_SIZE !== 0)
      throw errnoError('EINVAL', `memory segment ${name} does not start on a page (offset ${offset})`);
    return { fd: this.#fh.fd, offset, length: segment.length };
  }

  #segment(name: string): MemorySegmentEntry {
    const segment = this.memory.find((m) => m.name === name);
    if (!segment) throw errnoError('ENOENT', `the snapshot has no memory segment ${JSON.stringify(name)}`);
    return segment;
  }

  /** Closes the file. */
  close(): Promise<void> {
    return this.#fh.close();
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Opens `path` and checks it whole (see the file comment). The caller closes what it returns. */
export async function openSnapshot(path: string, options: OpenSnapshotOptions = {}): Promise<SnapshotFile> {
  const fh = await open(path, 'r');
  try {
    return await check(fh, path, options.verifyMemory ?? true);
  } catch (error) {
    await fh.close();
    throw error;
  }
}

async function check(fh: FileHandle, path: string, verifyMemory: boolean): Promise<SnapshotFile> {
  const fail = (reason: ConstructorParameters<typeof SnapshotError>[0], why: string) =>
    new SnapshotError(reason, why, path);
  const st = await fh.stat();
  if (!st.isFile()) throw fail('not-a-snapshot', 'not a regular file');
  const size = st.size;

  const header = new Uint8Array(SNAPSHOT_HEADER_SIZE);
  const got = await readUpTo(fh, header, 0);
  const magicSeen = header.subarray(0, Math.min(got, MAGIC.length));
  if (!magicSeen.every((b, i) => b === MAGIC[i])) throw fail('not-a-snapshot', 'no RXVMSNAP magic');
  if (got < SNAPSHOT_HEADER_SIZE)
    throw fail('truncated', `the file ends inside the header (${got} of ${SNAPSHOT_HEADER_SIZE} bytes)`);
  const view = new DataView(header.buffer);
  const version = view.getUint32(Header.version, true);
  if (version !== SNAPSHOT_FORMAT_VERSION)
    throw fail(
      'format-version',
      `format version ${version}; this rxvmm reads version ${SNAPSHOT_FORMAT_VERSION}`,
    );
  const flags = view.getUint32(Header.flags, true);
  if (flags !== 0) throw fail('malformed', `reserved header flags 0x${flags.toString(16)} are set`);
  const stateLength = view.getBigUint64(Header.stateLength, true);
  const memoryLength = view.getBigUint64(Header.memoryLength, true);
  if (stateLength > BigInt(SNAPSHOT_STATE_MAX))
    throw fail('malformed', `a state of ${stateLength} bytes (at most ${SNAPSHOT_STATE_MAX})`);
  if (memoryLength > BigInt(Number.MAX_SAFE_INTEGER))
    throw fail('malformed', `a memory section of ${memoryLength} bytes`);
  const writerLength = view.getUint16(Header.writerLength, true);
  if (writerLength > SNAPSHOT_WRITER_MAX)
    throw fail('malformed', `a writer string of ${writerLength} bytes (at most ${SNAPSHOT_WRITER_MAX})`);
  const writerEnd = Header.writer + writerLength;
  let writer: string;
  try {
    writer = new TextDecoder('utf-8', { fatal: true }).decode(header.subarray(Header.writer, writerEnd));
  } catch {
    throw fail('malformed', 'the writer string is not UTF-8');
  }
  if (!header.subarray(writerEnd).every((b) => b === 0))
    throw fail('malformed', 'the header padding is not zero');

  const memOffset = memoryOffset(Number(stateLength));
  const expected = memOffset + Number(memoryLength);
  if (size < expected)
    throw fail('truncated', `the file is ${size} bytes; its header says ${expected} (state, then memory)`);
  if (size > expected) throw fail('trailing-data', `${size - expected} bytes after the memory section`);

  const stateBytes = new Uint8Array(memOffset - SNAPSHOT_HEADER_SIZE);
  await readExactly(fh, stateBytes, SNAPSHOT_HEADER_SIZE, path);
  const state = stateBytes.subarray(0, Number(stateLength));
  if (
    !sameDigest(
      createHash('sha256').update(state).digest(),
      header.subarray(Header.stateSha256, Header.stateSha256 + 32),
    )
  )
    throw fail('checksum', 'the state does not match its sha256');
  if (!stateBytes.subarray(Number(stateLength)).every((b) => b === 0))
    throw fail('malformed', 'the padding after the state is not zero');
  let document: unknown;
  try {
    document = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(state));
  } catch (error) {
    throw fail('malformed', `the state is not UTF-8 JSON: ${(error as Error).message}`);
  }
  const memory = memoryTable(document, Number(memoryLength), fail);

  if (verifyMemory) {
    const hash = createHash('sha256');
    const chunk = new Uint8Array(CHUNK);
    for (let at = 0; at < Number(memoryLength); at += CHUNK) {
      const part = chunk.subarray(0, Math.min(CHUNK, Number(memoryLength) - at));
      await readExactly(fh, part, memOffset + at, path);
      hash.update(part);
    }
    if (!sameDigest(hash.digest(), header.subarray(Header.memorySha256, Header.memorySha256 + 32)))
      throw fail('checksum', 'the memory does not match its sha256');
  }
  return new SnapshotFile(
    {
      path,
      formatVersion: version,
      writer,
      state: (document as { state: unknown }).state,
      memory,
      size,
      memoryOffset: memOffset,
    },
    fh,
  );
}

/** The memory table: named segments, back to back from 0, covering the section exactly. */
function memoryTable(
  document: unknown,
  memoryLength: number,
  fail: (reason: 'malformed', why: string) => SnapshotError,
): MemorySegmentEntry[] {
  if (typeof document !== 'object' || document === null || Array.isArray(document) || !('state' in document))
    throw fail('malformed', 'the state section is not { memory, state }');
  const table = (document as { memory?: unknown }).memory;
  if (!Array.isArray(table)) throw fail('malformed', 'the memory table is not a list');
  const names = new Set<string>();
  let next = 0;
  const out = table.map((value: unknown, i): MemorySegmentEntry => {
    const e = value as Partial<MemorySegmentEntry> | null;
    if (typeof e?.name !== 'string' || e.name === '' || e.name.length > 256 || names.has(e.name))
      throw fail('malformed', `memory[${i}] has no name, or one used twice`);
    names.add(e.name);
    if (!Number.isSafeInteger(e.offset) || !Number.isSafeInteger(e.length) || (e.length as number) < 0)
      throw fail('malformed', `memory[${i}] offset or length is not a non-negative integer`);
    if (e.offset !== next) throw fail('malformed', `memory[${i}] starts at ${e.offset}, not at ${next}`);
    next += e.length as number;
    if (next > memoryLength) throw fail('malformed', `memory[${i}] ends past the memory section`);
    return { name: e.name, offset: e.offset as number, length: e.length as number };
  });
  if (next !== memoryLength)
    throw fail('malformed', `the memory table covers ${next} of the section's ${memoryLength} bytes`);
  return out;
}

function sameDigest(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function readUpTo(fh: FileHandle, target: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < target.byteLength) {
    const { bytesRead } = await fh.read(target, done, target.byteLength - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

async function readExactly(
  fh: FileHandle,
  target: Uint8Array,
  position: number,
  path: string,
): Promise<void> {
  const done = await readUpTo(fh, target, position);
  if (done < target.byteLength)
    throw new SnapshotError('truncated', 'the file shrank while it was read', path);
}
