// rxvmm-vhost-blk driven by the TS frontend of @rxvmm/vhost-user: a memfd as
// guest RAM, a split ring driven from the driver side, real kicks through an
// eventfd, completions read from the call eventfd, and the data checked in the
// disk file. Plus the CLI's argument handling, reconnects and shutdown.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VhostUserFrontend } from '@rxvmm/vhost-user';
import { countFds, countMaps, MemfdRam, TestQueue } from '@rxvmm/vhost-user/testing';
import { BlkRequestType, BlkStatus, decodeBlkConfig } from '@rxvmm/virtio-blk';
import { firstValueFrom } from 'rxjs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CAPABILITIES, type CliIo, type RunningBackend, run } from '../src/run.js';

const dir = mkdtempSync(join(tmpdir(), 'rxvmm-vhost-blk-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function capture(): CliIo & { stdout: string; stderr: string } {
  const io = {
    stdout: '',
    stderr: '',
    out: (t: string) => {
      io.stdout += t;
    },
    err: (t: string) => {
      io.stderr += t;
    },
  };
  return io;
}

let n = 0;
function disk(bytes = 1 << 20): string {
  const path = join(dir, `disk${n++}.img`);
  writeFileSync(path, new Uint8Array(bytes));
  return path;
}

describe('arguments', () => {
  it('prints the capabilities JSON of vhost-user.json', async () => {
    const io = capture();
    expect(await run(['--print-capabilities'], io)).toBe(0);
    expect(JSON.parse(io.stdout)).toEqual({ type: 'block', features: ['read-only', 'blk-file'] });
    expect(CAPABILITIES.type).toBe('block');
  });

  it('prints usage for --help', async () => {
    const io = capture();
    expect(await run(['--help'], io)).toBe(0);
    expect(io.stdout).toMatch(/--socket-path PATH/);
  });

  it.each([
    [['--blk-file', 'x'], /exactly one of --socket-path and --fd/],
    [['--socket-path', 's', '--fd', '3', '--blk-file', 'x'], /exactly one of/],
    [['--socket-path', 's'], /--blk-file is required/],
    [['--socket-path', 's', '--blk-file', 'x', '--num-queues', '0'], /--num-queues 0 must be 1..64/],
    [['--fd=-1', '--blk-file', 'x'], /not an fd number/],
    [['--bogus'], /Unknown option '--bogus'/],
    // Negative and huge numbers, with or without '=': the range check answers, in one line.
    [
      ['--fd', '-1', '--blk-file', 'x'],
      /^rxvmm-vhost-blk: --fd -1 is not an fd number \(0\.\.2147483647\)\n/,
    ],
    [['--fd', '99999999999999999999', '--blk-file', 'x'], /--fd 99999999999999999999 is not an fd number/],
    [
      ['--socket-path', 's', '--blk-file', 'x', '--num-queues', '-1'],
      /^rxvmm-vhost-blk: --num-queues -1 must be 1\.\.64\n/,
    ],
    [['--socket-path', 's', '--blk-file', 'x', '--num-queues=1e3'], /--num-queues 1e3 must be 1\.\.64/],
    [
      ['--socket-path', 's', '--blk-file', 'x', '--delay-completions', '0'],
      /^rxvmm-vhost-blk: --delay-completions 0 must be 1\.\.60000 \(milliseconds\)\n/,
    ],
    [
      ['--socket-path', 's', '--blk-file', 'x', '--delay-completions', '-5'],
      /--delay-completions -5 must be/,
    ],
    [['--socket-path', '--blk-file', 'x'], /--socket-path needs a value/],
    [
      ['--socket-path', 's', '--blk-file', 'x', 'extra'],
      /unexpected argument 'extra': rxvmm-vhost-blk takes no positional arguments/,
    ],
  ])('refuses %j with exit code 2: one line, then where to look', async (argv, pattern) => {
    const io = capture();
    expect(await run(argv, io)).toBe(2);
    expect(io.stderr).toMatch(pattern);
    const lines = io.stderr.split('\n');
    expect(lines).toHaveLength(3); // the reason, the hint, and the final newline
    expect(lines[1]).toBe("Try 'rxvmm-vhost-blk --help'.");
    expect(io.stderr).not.toMatch(/Usage:/);
    expect(io.stdout).toBe('');
  });

  it.each([
    [0, 'an empty image'],
    [511, 'an image smaller than one sector'],
  ])(
    'exits 1 for %i bytes (%s), saying the size it needs and how to grow it; the file is kept',
    async (bytes) => {
      const path = disk(bytes);
      const io = capture();
      expect(await run(['--socket-path', join(dir, `small${n++}.sock`), '--blk-file', path], io)).toBe(1);
      expect(io.stderr).toBe(
        `rxvmm-vhost-blk: cannot open ${path}: it holds ${bytes} bytes, but a virtio-blk disk needs at least 512 (one sector): grow it (truncate -s 64M ${path})\n`,
      );
      expect(readFileSync(path).length).toBe(bytes);
    },
  );

  it('serves a one-sector image (the smallest there is)', async () => {
    const io = capture();
    const r = await run(['--socket-path', join(dir, `one${n++}.sock`), '--blk-file', disk(512)], io);
    if (typeof r === 'number') throw new Error(io.stderr);
    await r.shutdown('test');
  });

  it('a directory as --blk-file: exit 1 naming the path and what it wants', async () => {
    const io = capture();
    expect(await run(['--socket-path', join(dir, `d${n++}.sock`), '--blk-file', dir], io)).toBe(1);
    expect(io.stderr).toBe(
      `rxvmm-vhost-blk: cannot open ${dir}: it is a directory: give a disk image (a regular file or a block device)\n`,
    );
  });

  it('exits 2 with one line naming the path when --socket-path is a regular file; the file is kept byte for byte', async () => {
    const path = disk();
    const bytes = Buffer.from(new Uint8Array(1 << 20).map((_, i) => (i * 31 + 7) & 0xff));
    writeFileSync(path, bytes);
    const io = capture();
    // The classic typo: the disk image given as the socket path too.
    expect(await run(['--socket-path', path, '--blk-file', path], io)).toBe(2);
    expect(io.stderr).toBe(
      `rxvmm-vhost-blk: cannot listen: EEXIST: socket path ${path} is a regular file (1048576 bytes), not a socket: refusing to replace it\n`,
    );
    expect(readFileSync(path).equals(bytes)).toBe(true);
  });

  it('exits 2 naming the path when its directory does not exist', async () => {
    const io = capture();
    const socket = join(dir, 'no-such-dir', 'blk.sock');
    expect(await run(['--socket-path', socket, '--blk-file', disk()], io)).toBe(2);
    expect(io.stderr).toBe(
      `rxvmm-vhost-blk: cannot listen: ENOENT: cannot bind ${socket}: directory ${join(dir, 'no-such-dir')} does not exist\n`,
    );
  });

  it('exits 1 when the disk cannot be opened (and never creates it)', async () => {
    const io = capture();
    const missing = join(dir, 'missing.img');
    expect(await run(['--socket-path', join(dir, 'x.sock'), '--blk-file', missing], io)).toBe(1);
    expect(io.stderr).toMatch(/cannot open/);
    expect(io.stderr).toBe(
      `rxvmm-vhost-blk: cannot open ${missing}: no such file (rxvmm-vhost-blk never creates one): create it (truncate -s 64M ${missing})\n`,
    );
    expect(existsSync(missing)).toBe(false);
  });
});

/** A virtio-blk driver over the TS frontend. */
class BlkDriver {
  readonly ram: MemfdRam;
  readonly q: TestQueue;
  fe!: VhostUserFrontend;
  private next = 0x100000n;

  /** `sealed`: guest RAM sealed against shrinking, as QEMU's memfd backend does. */
  constructor(queueBase = 0x10000n, sealed = false) {
    this.ram = new MemfdRam(4 << 20, 0n, sealed);
    this.q = new TestQueue(this.ram, 64, queueBase, true);
  }

  async connect(socket: string): Promise<void> {
    await this.attach(VhostUserFrontend.connect(socket));
  }

  async attach(fe: VhostUserFrontend): Promise<void> {
    this.fe = fe;
    await this.fe.start({
      wantFeatures: (1n << 32n) | (1n << 29n) | (1n << 9n),
      memory: [this.ram.region],
      queues: [this.q.frontendQueue()],
    });
  }

  /** One request: returns [status, data read]. */
  async request(type: number, sector: bigint, data: Uint8Array | number): Promise<[number, Uint8Array]> {
    const mem = this.ram.memory;
    const hdr = this.alloc(16);
    mem.writeU32(hdr, type);
    mem.writeU32(hdr + 4n, 0);
    mem.writeU64(hdr + 8n, sector);
    const len = typeof data === 'number' ? data : data.length;
    const buf = this.alloc(Math.max(len, 1));
    const status = this.alloc(1);
    mem.writeU8(status, 0xff);
    const readable = [{ addr: hdr, len: 16 }];
    const writable = [{ addr: status, len: 1 }];
    if (typeof data !== 'number') {
      mem.write(buf, data);
      if (len > 0) readable.push({ addr: buf, len });
    } else if (len > 0) {
      writable.unshift({ addr: buf, len });
    }
    this.q.driver.add(readable, writable);
    const called = firstValueFrom(this.q.call.signals$);
    this.q.kickIfNeeded();
    await called;
    expect(this.q.driver.getUsed()).not.toBeNull();
    this.q.driver.enableInterrupts();
    const out = new Uint8Array(typeof data === 'number' ? len : 0);
    mem.read(buf, out);
    return [mem.readU8(status), out];
  }

  private alloc(len: number): bigint {
    const at = this.next;
    this.next += BigInt((len + 4095) & ~4095);
    if (this.next > 0x3f0000n) this.next = 0x100000n;
    return at;
  }

  close(): void {
    this.fe?.close();
    this.q.close();
    this.ram.close();
  }
}

describe('serving a frontend', () => {
  let backend: RunningBackend | undefined;
  const drivers: BlkDriver[] = [];
  afterEach(async () => {
    for (const d of drivers.splice(0)) d.close();
    await backend?.shutdown('test over');
    backend = undefined;
  });

  async function start(
    args: string[] = [],
  ): Promise<{ socket: string; path: string; io: ReturnType<typeof capture> }> {
    const socket = join(dir, `blk${n++}.sock`);
    const path = disk();
    const io = capture();
    const r = await run(['--socket-path', socket, '--blk-file', path, '--json-stats', ...args], io);
    if (typeof r === 'number') throw new Error(io.stderr);
    backend = r;
    return { socket, path, io };
  }

  it('writes, flushes and reads back through real kicks; the data is in the file', async () => {
    const { socket, path, io } = await start();
    const d = new BlkDriver();
    drivers.push(d);
    await d.connect(socket);
    const config = decodeBlkConfig(await d.fe.getConfig(0, 60));
    expect(config.capacity).toBe(2048n);
    const data = new Uint8Array(4096).map((_, i) => (i * 7 + 3) & 0xff);
    expect((await d.request(BlkRequestType.OUT, 8n, data))[0]).toBe(BlkStatus.OK);
    expect((await d.request(BlkRequestType.FLUSH, 0n, 0))[0]).toBe(BlkStatus.OK);
    const [st, back] = await d.request(BlkRequestType.IN, 8n, 4096);
    expect(st).toBe(BlkStatus.OK);
    expect(back).toEqual(data);
    expect(new Uint8Array(readFileSync(path)).subarray(8 * 512, 8 * 512 + 4096)).toEqual(data);
    // Out of range: an IOERR status, the session goes on.
    expect((await d.request(BlkRequestType.IN, 2048n, 512))[0]).toBe(BlkStatus.IOERR);
    expect(io.stderr).toMatch(/serving .* with 1 queue/);
  });

  it('survives a disconnect: state reset, mappings released, the next frontend is served', async () => {
    const { socket, path, io } = await start();
    const maps = countMaps();
    const d1 = new BlkDriver();
    drivers.push(d1);
    await d1.connect(socket);
    const one = new Uint8Array(512).fill(0x11);
    expect((await d1.request(BlkRequestType.OUT, 0n, one))[0]).toBe(BlkStatus.OK);
    d1.fe.close();
    await new Promise<void>((resolve) => {
      const poll = () => (io.stdout.includes('session-end') ? resolve() : setTimeout(poll, 5));
      poll();
    });
    // Only the driver's own mapping of its RAM is left (the back-end's is gone).
    expect(countMaps()).toBe(maps + 1);
    const stats = JSON.parse(io.stdout.trim().split('\n')[0] as string);
    expect(stats).toMatchObject({ event: 'session-end', reason: null, blk: { writes: 1 } });
    const d2 = new BlkDriver(0x20000n);
    drivers.push(d2);
    await d2.connect(socket);
    const [st, back] = await d2.request(BlkRequestType.IN, 0n, 512);
    expect(st).toBe(BlkStatus.OK);
    expect(back).toEqual(one);
    expect(new Uint8Array(readFileSync(path)).subarray(0, 512)).toEqual(one);
  });

  it('--fd serves an inherited listening socket', async () => {
    const { unixBind, unixListen, unixSocket } = await import('@rxvmm/sys');
    const socket = join(dir, `fd${n++}.sock`);
    const listener = unixSocket(true);
    unixBind(listener, socket);
    unixListen(listener, 1);
    const io = capture();
    const r = await run(['--fd', String(listener), '--blk-file', disk()], io);
    if (typeof r === 'number') throw new Error(io.stderr);
    backend = r;
    const d = new BlkDriver();
    drivers.push(d);
    await d.connect(socket);
    expect((await d.request(BlkRequestType.OUT, 1n, new Uint8Array(512).fill(3)))[0]).toBe(BlkStatus.OK);
    expect(io.stderr).toMatch(new RegExp(`on fd ${listener}`));
  });

  it('--fd with a connected socket (one end of a socketpair) serves that frontend, then is finished', async () => {
    const { unixSocketPair } = await import('@rxvmm/sys');
    const fds = countFds();
    const [mine, theirs] = unixSocketPair();
    const io = capture();
    const r = await run(['--fd', String(mine), '--blk-file', disk()], io);
    if (typeof r === 'number') throw new Error(io.stderr);
    backend = r;
    expect(r.server.connectedMode).toBe(true);
    const d = new BlkDriver();
    await d.attach(VhostUserFrontend.fromFd(theirs));
    expect((await d.request(BlkRequestType.OUT, 2n, new Uint8Array(512).fill(4)))[0]).toBe(BlkStatus.OK);
    d.close();
    await r.finished;
    await r.shutdown('frontend gone');
    backend = undefined;
    expect(io.stderr).toMatch(/connected socket: serving that frontend only/);
    expect(countFds()).toBe(fds);
  });

  it('exits 2 when another back-end is listening on --socket-path; that one keeps serving', async () => {
    const { socket } = await start();
    const io = capture();
    expect(await run(['--socket-path', socket, '--blk-file', disk()], io)).toBe(2);
    expect(io.stderr).toMatch(`socket path ${socket} is a live socket: another process is listening on it`);
    const d = new BlkDriver();
    drivers.push(d);
    await d.connect(socket);
    expect((await d.request(BlkRequestType.OUT, 0n, new Uint8Array(512).fill(1)))[0]).toBe(BlkStatus.OK);
  });

  it('--require-sealed serves memory sealed against shrinking and refuses unsealed memory', async () => {
    const { socket, io } = await start(['--require-sealed']);
    expect(io.stderr).toMatch(/sealed guest memory only/);
    const unsealed = new BlkDriver();
    drivers.push(unsealed);
    await expect(unsealed.connect(socket)).rejects.toThrow(/back-end refused SET_MEM_TABLE/);
    unsealed.fe.close(); // one frontend at a time: the next is served once this one has gone
    await new Promise<void>((resolve) => {
      const poll = () => (io.stdout.includes('session-end') ? resolve() : setTimeout(poll, 5));
      poll();
    });
    expect(io.stderr).toMatch(
      /SET_MEM_TABLE\(5\) refused: EPERM: region 0: its fd is not sealed against shrinking/,
    );
    const sealed = new BlkDriver(0x10000n, true);
    drivers.push(sealed);
    await sealed.connect(socket);
    expect((await sealed.request(BlkRequestType.OUT, 0n, new Uint8Array(512).fill(7)))[0]).toBe(BlkStatus.OK);
  });

  it('read-only: writes fail with IOERR and the file is unchanged', async () => {
    const { socket, path } = await start(['--read-only']);
    const d = new BlkDriver();
    drivers.push(d);
    await d.connect(socket);
    expect((await d.request(BlkRequestType.OUT, 0n, new Uint8Array(512).fill(9)))[0]).toBe(BlkStatus.IOERR);
    expect(readFileSync(path).every((b) => b === 0)).toBe(true);
  });

  it('shutdown ends the session, removes the socket and releases every fd', async () => {
    const fds = countFds();
    const { socket } = await start(['--num-queues', '2']);
    const d = new BlkDriver();
    await d.connect(socket);
    expect(await d.fe.getQueueNum()).toBe(2);
    await backend?.shutdown('test');
    backend = undefined;
    expect(existsSync(socket)).toBe(false);
    d.close();
    expect(countFds()).toBe(fds);
  });
});

const cli = join(dirname(fileURLToPath(import.meta.url)), '../dist/cli.js');
const built = existsSync(cli);
if (!built)
  console.warn(`rxvmm-vhost-blk process tests skipped: ${cli} not built (npx tsc -p tsconfig.build.json)`);

describe.skipIf(!built)('the rxvmm-vhost-blk process', () => {
  it('a usage error: exit 2, one line and the --help hint on stderr, nothing on stdout', () => {
    const r = spawnSync(
      process.execPath,
      [cli, '--socket-path', 's', '--blk-file', 'x', '--num-queues', '-1'],
      {
        encoding: 'utf8',
      },
    );
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe("rxvmm-vhost-blk: --num-queues -1 must be 1..64\nTry 'rxvmm-vhost-blk --help'.\n");
  });

  it('a 0-byte disk image: exit 1, the size it needs, no socket left behind', () => {
    const path = disk(0);
    const socket = join(dir, `z${n++}.sock`);
    const r = spawnSync(process.execPath, [cli, '--socket-path', socket, '--blk-file', path], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/it holds 0 bytes, but a virtio-blk disk needs at least 512 \(one sector\)/);
    expect(existsSync(socket)).toBe(false);
  });

  it('given its disk image as --socket-path, exits 2 with one line and leaves the disk intact', async () => {
    const path = disk();
    const bytes = Buffer.alloc(1 << 20, 0xa5);
    writeFileSync(path, bytes);
    const child = spawn(process.execPath, [cli, '--socket-path', path, '--blk-file', path], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (t: string) => (err += t));
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(2);
    expect(err).toBe(
      `rxvmm-vhost-blk: cannot listen: EEXIST: socket path ${path} is a regular file (1048576 bytes), not a socket: refusing to replace it\n`,
    );
    expect(readFileSync(path).equals(bytes)).toBe(true);
  });

  it('on SIGTERM flushes, removes its socket, logs why and exits 0', async () => {
    const socket = join(dir, `p${n++}.sock`);
    const path = disk();
    const child = spawn(process.execPath, [cli, '--socket-path', socket, '--blk-file', path], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (t: string) => (err += t));
    while (!existsSync(socket)) await new Promise((r) => setTimeout(r, 20));
    const d = new BlkDriver();
    await d.connect(socket);
    const data = new Uint8Array(1024).fill(0x5a);
    expect((await d.request(BlkRequestType.OUT, 4n, data))[0]).toBe(BlkStatus.OK);
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    d.close();
    expect(existsSync(socket)).toBe(false);
    expect(err).toMatch(/shutting down: received SIGTERM/);
    expect(new Uint8Array(readFileSync(path)).subarray(4 * 512, 6 * 512)).toEqual(data);
  });
});
