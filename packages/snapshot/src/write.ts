/**
 * Writes a snapshot file (format.ts): to a temporary file next to `path`,
 * renamed over `path` once complete, so a crash or an error never leaves a
 * partial snapshot under the name.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { errnoError } from '@rxvmm/errno';
import {
  Header,
  memoryOffset,
  SNAPSHOT_FORMAT_VERSION,
  SNAPSHOT_HEADER_SIZE,
  SNAPSHOT_MAGIC,
  SNAPSHOT_STATE_MAX,
  SNAPSHOT_WRITER_MAX,
  type SnapshotDocument,
} from './format.js';

/**
 * "@rxvmm/snapshot <version>": the writer recorded when the caller names none. Read at the first
 * call (not at load: a bundler may move this module away from its package.json; then the version
 * is left out).
 */
export function defaultSnapshotWriter(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      name?: string;
      version?: string;
    };
    if (pkg.name === '@rxvmm/snapshot' && pkg.version) return `@rxvmm/snapshot ${pkg.version}`;
  } catch {
    // no package.json beside us: a bundle
  }
  return '@rxvmm/snapshot';
}

/** One named run of guest memory to save (a memory slot, say). */
export interface SnapshotMemorySegment {
  name: string;
  bytes: Uint8Array;
}

/** What a snapshot holds: the state (JSON) and the guest memory segments. */
export interface SnapshotContents {
  /** Plain JSON-serialisable data (bigints as decimal strings: a bigint is `EINVAL`). */
  state: unknown;
  memory: readonly SnapshotMemorySegment[];
}

/** Options of `writeSnapshot`. */
export interface WriteSnapshotOptions {
  /** Who writes it, recorded in the header (at most 256 UTF-8 bytes). Default `defaultSnapshotWriter()`. */
  writer?: string;
}

/** What `writeSnapshot` wrote: where, and how many bytes of each section. */
export interface WrittenSnapshot {
  path: string;
  /** The file's size in bytes. */
  size: number;
  stateBytes: number;
  memoryBytes: number;
}

/** Writes a snapshot file at `path`: header with checksums, the state as JSON, each memory segment page-aligned. */
export async function writeSnapshot(
  path: string,
  contents: SnapshotContents,
  options: WriteSnapshotOptions = {},
): Promise<WrittenSnapshot> {
  const writer = new TextEncoder().encode(options.writer ?? defaultSnapshotWriter());
  if (writer.length > SNAPSHOT_WRITER_MAX)
    throw errnoError('EINVAL', `writer is ${writer.length} bytes (at most ${SNAPSHOT_WRITER_MAX})`);
  const names = new Set<string>();
  let offset = 0;
  const document: SnapshotDocument = {
    memory: contents.memory.map(({ name, bytes }) => {
      if (typeof name !== 'string' || name === '' || names.has(name))
        throw errnoError('EINVAL', `memory segment name ${JSON.stringify(name)} is empty or used twice`);
      names.add(name);
      const entry = { name, offset, length: bytes.byteLength };
      offset += bytes.byteLength;
      return entry;
    }),
    state: contents.state,
  };
  let json: string;
  try {
    json = JSON.stringify(document);
  } catch (error) {
    throw errnoError(
      'EINVAL',
      `the state is not JSON (bigints go as decimal strings): ${(error as Error).message}`,
    );
  }
  const state = new TextEncoder().encode(json);
  if (state.length > SNAPSHOT_STATE_MAX)
    throw errnoError('E2BIG', `the state is ${state.length} bytes (at most ${SNAPSHOT_STATE_MAX})`);
  const memoryLength = offset;
  const memoryHash = createHash('sha256');
  for (const { bytes } of contents.memory) memoryHash.update(bytes);

  const header = new Uint8Array(SNAPSHOT_HEADER_SIZE);
  const view = new DataView(header.buffer);
  header.set(new TextEncoder().encode(SNAPSHOT_MAGIC), Header.magic);
  view.setUint32(Header.version, SNAPSHOT_FORMAT_VERSION, true);
  view.setUint32(Header.flags, 0, true);
  view.setBigUint64(Header.stateLength, BigInt(state.length), true);
  view.setBigUint64(Header.memoryLength, BigInt(memoryLength), true);
  header.set(createHash('sha256').update(state).digest(), Header.stateSha256);
  header.set(memoryHash.digest(), Header.memorySha256);
  view.setUint16(Header.writerLength, writer.length, true);
  header.set(writer, Header.writer);

  const tmp = `${path}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx');
  try {
    await fh.write(header, 0, header.length, 0);
    await fh.write(state, 0, state.length, SNAPSHOT_HEADER_SIZE);
    let at = memoryOffset(state.length); // the gap before it reads as zeros
    for (const { bytes } of contents.memory) {
      await writeAll(fh, bytes, at);
      at += bytes.byteLength;
    }
    await fh.truncate(at); // an empty memory section still ends the file page-aligned
    await fh.close();
    await rename(tmp, path);
    return { path, size: at, stateBytes: state.length, memoryBytes: memoryLength };
  } catch (error) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
}

async function writeAll(
  fh: import('node:fs/promises').FileHandle,
  bytes: Uint8Array,
  position: number,
): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.byteLength - done, position + done);
    done += bytesWritten;
  }
}
