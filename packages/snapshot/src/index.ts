/**
 * @rxvmm/snapshot: the rxvmm snapshot file (docs/SNAPSHOT.md): a checksummed
 * header, the state as JSON, guest memory in a page-aligned section; the
 * writer (atomic: a temporary file renamed into place) and the reader that
 * refuses a truncated, corrupted, wrong-version or hostile file with one
 * `SnapshotError` before anything is built from it.
 */
export { SnapshotError, type SnapshotErrorReason } from './errors.js';
export {
  type MemorySegmentEntry,
  SNAPSHOT_FORMAT_VERSION,
  SNAPSHOT_HEADER_SIZE,
  SNAPSHOT_MAGIC,
  SNAPSHOT_STATE_MAX,
  SNAPSHOT_WRITER_MAX,
} from './format.js';
export { type OpenSnapshotOptions, openSnapshot, SnapshotFile, type SnapshotMemorySource } from './read.js';
export {
  defaultSnapshotWriter,
  type SnapshotContents,
  type SnapshotMemorySegment,
  type WriteSnapshotOptions,
  type WrittenSnapshot,
  writeSnapshot,
} from './write.js';
