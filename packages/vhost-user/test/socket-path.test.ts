// What a back-end may do to the path it is told to listen on: replace a stale
// socket (nobody listens), and nothing else. A file, directory, symlink or a
// live socket there is an error naming the path, and stays exactly as it was.
// At close the socket is removed only while the path is still the one bound.
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { close, unixBind, unixSocket } from '@rxvmm/sys';
import { afterAll, describe, expect, it } from 'vitest';
import { VhostUserServer } from '../src/index.js';
import { EchoDevice } from '@rxvmm/virtio-ring/testing';
import { expectServes, startServer } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'rxvmm-vu-path-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => join(dir, `p${n++}`);

/** The error `new VhostUserServer` throws for `path`. */
function listenError(path: string): Error & { code?: string; path?: string } {
  try {
    new VhostUserServer(new EchoDevice({ queues: 2 }), { socketPath: path, log: () => {} });
  } catch (error) {
    return error as Error & { code?: string; path?: string };
  }
  throw new Error(`listening on ${path} succeeded`);
}

/** A socket file nobody listens on: bound, then its fd closed (what a killed back-end leaves). */
function staleSocket(path: string): void {
  const fd = unixSocket(false);
  unixBind(fd, path);
  close(fd);
}

describe('the socket path before bind', () => {
  it('refuses a regular file and keeps it byte for byte', () => {
    const path = fresh();
    const bytes = new Uint8Array(4096).map((_, i) => (i * 13 + 1) & 0xff);
    writeFileSync(path, bytes);
    const error = listenError(path);
    expect(error).toMatchObject({ code: 'EEXIST', path });
    expect(error.message).toBe(
      `EEXIST: socket path ${path} is a regular file (4096 bytes), not a socket: refusing to replace it`,
    );
    expect(new Uint8Array(readFileSync(path))).toEqual(bytes);
  });

  it('refuses a directory and leaves it (and its contents) alone', () => {
    const path = fresh();
    mkdirSync(path);
    writeFileSync(join(path, 'inside'), 'x');
    const error = listenError(path);
    expect(error).toMatchObject({ code: 'EEXIST', path });
    expect(error.message).toMatch(`socket path ${path} is a directory`);
    expect(readFileSync(join(path, 'inside'), 'utf8')).toBe('x');
  });

  it('refuses a symlink, even to a stale socket, and keeps both', () => {
    const target = fresh();
    staleSocket(target);
    const path = fresh();
    symlinkSync(target, path);
    const error = listenError(path);
    expect(error).toMatchObject({ code: 'EEXIST', path });
    expect(error.message).toMatch(`socket path ${path} is a symbolic link to ${target}, not a socket`);
    expect(readlinkSync(path)).toBe(target);
    expect(lstatSync(target).isSocket()).toBe(true);
  });

  it('refuses a live socket; its listener keeps serving', async () => {
    const rig = startServer(fresh());
    try {
      const error = listenError(rig.path);
      expect(error).toMatchObject({ code: 'EADDRINUSE', path: rig.path });
      expect(error.message).toMatch(
        `socket path ${rig.path} is a live socket: another process is listening on it`,
      );
      // The probe was one connection that ended at once: the listener served it and goes on.
      expect(await rig.nextEnd()).toBeNull();
      await expectServes(rig);
    } finally {
      await rig.server.close();
    }
    expect(existsSync(rig.path)).toBe(false);
  });

  it('replaces a stale socket and serves on it', async () => {
    const path = fresh();
    staleSocket(path);
    const rig = startServer(path); // bind itself proves the stale file went (else EADDRINUSE)
    try {
      expect(lstatSync(path).isSocket()).toBe(true);
      await expectServes(rig);
    } finally {
      await rig.server.close();
    }
  });

  it('names the path when its directory does not exist, and creates nothing', () => {
    const path = join(dir, 'no-such-dir', 's');
    const error = listenError(path);
    expect(error).toMatchObject({ code: 'ENOENT', path });
    expect(error.message).toBe(
      `ENOENT: cannot bind ${path}: directory ${join(dir, 'no-such-dir')} does not exist`,
    );
    expect(existsSync(join(dir, 'no-such-dir'))).toBe(false);
  });

  it('names the path when a parent is not a directory', () => {
    const file = fresh();
    writeFileSync(file, 'keep');
    const path = join(file, 's');
    const error = listenError(path);
    expect(error).toMatchObject({ code: 'ENOTDIR', path });
    expect(error.message).toMatch(path);
    expect(readFileSync(file, 'utf8')).toBe('keep');
  });

  it('names the path when it is too long for a socket address', () => {
    const path = join(dir, 'x'.repeat(120));
    const error = listenError(path);
    expect(error).toMatchObject({ code: 'ENAMETOOLONG', path });
    expect(error.message).toMatch(`cannot bind ${path}`);
  });
});

describe('the socket path at close', () => {
  it('removes the socket it bound', async () => {
    const rig = startServer(fresh());
    expect(lstatSync(rig.path).isSocket()).toBe(true);
    await rig.server.close();
    expect(existsSync(rig.path)).toBe(false);
  });

  it('leaves a socket another server bound at the path since; that one keeps serving', async () => {
    const path = fresh();
    const old = startServer(path);
    // An operator removed the path and started a new back-end there while the old one still runs.
    rmSync(path);
    const current = startServer(path);
    try {
      const ino = lstatSync(path).ino;
      await old.server.close();
      expect(lstatSync(path).ino).toBe(ino);
      expect(old.logs.join('\n')).toMatch(`${path} is no longer the socket bound here: left in place`);
      await expectServes(current);
    } finally {
      await current.server.close();
    }
    expect(existsSync(path)).toBe(false);
  });

  it('leaves a regular file that replaced its socket', async () => {
    const path = fresh();
    const rig = startServer(path);
    rmSync(path);
    writeFileSync(path, 'precious');
    await rig.server.close();
    expect(readFileSync(path, 'utf8')).toBe('precious');
  });
});
