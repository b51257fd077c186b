/**
 * (d) A vhost-user back-end for a device of your own, in its own process, and a frontend
 * that drives it.
 *
 * The device is a digest service (a `ChainDevice`): each request is a byte string, the reply
 * its SHA-256. `VhostUserServer` hosts it on a Unix socket: the protocol, the memory table
 * (the frontend's memfd, received with SCM_RIGHTS and mapped), the rings and the serving loop
 * are the library's. This file is both programs: run plainly it forks itself with
 * `--backend <socket>` and plays the frontend, as a VMM would: guest RAM in a memfd, one
 * split ring whose driver side is the "guest", a kick and a call eventfd. Then it stops the
 * ring (GET_VRING_BASE), disconnects, and stops the back-end, which removes its socket.
 *
 * Run: node dist/vhost-user-device.js
 */
import * as assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VhostUserFrontend, VhostUserServer } from '@rxvmm/vhost-user';
import { MemfdRam, TestQueue } from '@rxvmm/vhost-user/testing';
import { featureBit, VirtioFeature } from '@rxvmm/virtio';
import { type ChainDevice, readSegments, writeSegments } from '@rxvmm/virtio-ring';
import { firstValueFrom } from 'rxjs';

const V1 = featureBit(VirtioFeature.VERSION_1);

const digestDevice: ChainDevice = {
  deviceType: 0xffff, // not a spec device
  features: V1,
  queueMaxSizes: [16],
  configSize: 0,
  readConfig: (_offset, data) => data.fill(0),
  handleChain(chain, memory) {
    const request = new Uint8Array(chain.readableLength);
    readSegments(memory, chain.readable, request);
    return writeSegments(memory, chain.writable, createHash('sha256').update(request).digest());
  },
};

async function backend(socketPath: string): Promise<void> {
  const server = new VhostUserServer(digestDevice, {
    socketPath,
    log: (line) => console.log(`[back-end] ${line}`),
  });
  process.send?.('listening');
  process.once('message', () => void server.close().then(() => process.disconnect()));
}

async function frontend(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rxvmm-vhost-example-'));
  const socketPath = join(dir, 'digest.sock');
  const child = fork(fileURLToPath(import.meta.url), ['--backend', socketPath]);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let socketLeft = true;
  try {
    await new Promise((resolve, reject) => {
      child.once('message', resolve);
      child.once('exit', (code) => reject(new Error(`back-end exited with ${code}`)));
    });

    // What a VMM has: guest RAM in a memfd (shared with the back-end) and a ring in it.
    const ram = new MemfdRam(1 << 20);
    const queue = new TestQueue(ram, 16, 0x1_0000n); // driver side of a split ring + kick/call EventFds
    const vhost = VhostUserFrontend.connect(socketPath);
    const acked = await vhost.start({
      wantFeatures: V1,
      memory: [ram.region],
      queues: [queue.frontendQueue()],
    });
    console.log(`[frontend] connected, features 0x${acked.toString(16)}`);

    // The "guest": three requests, one reply buffer each, one kick; then wait for the call eventfd.
    const words = ['kick', 'eventfd', 'vhost-user'];
    const replyAt = new Map<number, { word: string; addr: bigint }>(); // by head descriptor
    for (const [i, word] of words.entries()) {
      const request = 0x4_0000n + BigInt(i) * 0x1000n;
      ram.memory.write(request, new TextEncoder().encode(word));
      const head = queue.driver.add(
        [{ addr: request, len: word.length }],
        [{ addr: request + 0x800n, len: 32 }],
      );
      replyAt.set(head, { word, addr: request + 0x800n });
    }
    let answered = 0;
    queue.kickIfNeeded(); // one eventfd write: the back-end pops all three
    while (answered < words.length) {
      await firstValueFrom(queue.call.signals$); // the back-end signalled the call eventfd
      for (let used = queue.driver.getUsed(); used; used = queue.driver.getUsed(), answered++) {
        const { word, addr } = replyAt.get(used.id)!;
        const digest = new Uint8Array(used.len);
        ram.memory.read(addr, digest);
        assert.equal(Buffer.from(digest).toString('hex'), createHash('sha256').update(word).digest('hex'));
        console.log(`[frontend] sha256(${word}) = ${Buffer.from(digest).toString('hex', 0, 8)}...`);
      }
    }

    const next = await vhost.getVringBase(0); // stops the ring once its requests are done
    assert.equal(next, words.length);
    console.log(`[frontend] ring stopped at avail index ${next}`);
    vhost.close();
    queue.close();
    ram.close();
  } finally {
    if (child.connected) child.send('stop');
    else child.kill();
    await exited;
    socketLeft = existsSync(socketPath);
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(socketLeft, false); // the back-end removed its socket when it stopped
  console.log('[frontend] back-end stopped, socket removed');
}

const at = process.argv.indexOf('--backend');
if (at > 0) await backend(process.argv[at + 1]!);
else await frontend();
