import { fstatSync, ftruncateSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  close,
  eventfd,
  MAP_SHARED,
  MFD_CLOEXEC,
  mappingBuffer,
  memfdCreate,
  mmap,
  munmap,
  PROT_READ,
  PROT_WRITE,
  read8,
  recvMsg,
  sendMsg,
  unixAccept,
  unixBind,
  unixConnect,
  unixListen,
  unixSocket,
  unixSocketPair,
  write8,
} from './index.js';

const opened: number[] = [];
afterEach(() => {
  for (const fd of opened.splice(0)) close(fd);
});

describe('AF_UNIX sockets with SCM_RIGHTS', () => {
  it('passes bytes and an eventfd across a socketpair', () => {
    const [a, b] = unixSocketPair();
    const efd = eventfd(0, 0);
    opened.push(a, b, efd);
    expect(sendMsg(a, new Uint8Array([1, 2, 3]), [efd])).toBe(3);
    const buf = new Uint8Array(16);
    const got = recvMsg(b, buf, 4);
    expect(got?.bytes).toBe(3);
    expect(got?.fds).toHaveLength(1);
    expect(got?.truncated).toBe(false);
    const received = got?.fds[0] as number;
    opened.push(received);
    write8(received, 5n); // the same kernel object: visible through the original fd
    expect(read8(efd)).toBe(5n);
  });

  it('reports EAGAIN as null and EOF as 0 bytes', () => {
    const [a, b] = unixSocketPair();
    opened.push(b);
    expect(recvMsg(b, new Uint8Array(4), 0)).toBeNull();
    close(a);
    expect(recvMsg(b, new Uint8Array(4), 0)?.bytes).toBe(0);
  });

  it('marks fds beyond maxFds as truncated', () => {
    const [a, b] = unixSocketPair();
    const e1 = eventfd(0, 0);
    const e2 = eventfd(0, 0);
    opened.push(a, b, e1, e2);
    sendMsg(a, new Uint8Array([9]), [e1, e2]);
    const got = recvMsg(b, new Uint8Array(4), 1);
    expect(got?.truncated).toBe(true);
    for (const fd of got?.fds ?? []) close(fd);
  });

  it('binds, listens, connects and accepts on a path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rxvmm-sock-'));
    try {
      const path = join(dir, 's');
      const listener = unixSocket(true);
      opened.push(listener);
      unixBind(listener, path);
      unixListen(listener, 1);
      expect(unixAccept(listener)).toBeNull();
      const client = unixSocket(false);
      opened.push(client);
      unixConnect(client, path);
      const conn = unixAccept(listener);
      expect(conn).not.toBeNull();
      opened.push(conn as number);
      sendMsg(client, new Uint8Array([7]));
      const buf = new Uint8Array(1);
      expect(recvMsg(conn as number, buf, 0)?.bytes).toBe(1);
      expect(buf[0]).toBe(7);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects a path longer than sun_path', () => {
    const fd = unixSocket(true);
    opened.push(fd);
    expect(() => unixBind(fd, `/tmp/${'x'.repeat(200)}`)).toThrow(
      expect.objectContaining({ code: 'ENAMETOOLONG' }),
    );
  });
});

describe('mmap of a memfd', () => {
  it('shares bytes between two mappings of one memfd', () => {
    const fd = memfdCreate('t', MFD_CLOEXEC);
    opened.push(fd);
    ftruncateSync(fd, 8192);
    expect(fstatSync(fd).size).toBe(8192);
    const a = mmap(8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0n);
    const b = mmap(4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 4096n);
    new Uint8Array(mappingBuffer(a, 8192))[4097] = 0xab;
    expect(new Uint8Array(mappingBuffer(b, 4096))[1]).toBe(0xab);
    munmap(a, 8192);
    munmap(b, 4096);
  });

  it('throws EINVAL for a zero length', () => {
    expect(() => mmap(0, PROT_READ, MAP_SHARED, -1, 0n)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});
