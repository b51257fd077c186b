// The README example, runnable: a back-end serving a tiny "upper-case" device
// on a Unix socket, and a frontend that hands it a ring in a memfd.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VhostUserFrontend, VhostUserServer } from '@rxvmm/vhost-user';
import { MemfdRam, TestQueue } from '@rxvmm/vhost-user/testing';
import { featureBit, VirtioFeature } from '@rxvmm/virtio';
import { type ChainDevice, readSegments, writeSegments } from '@rxvmm/virtio-ring';
import { firstValueFrom } from 'rxjs';

export async function main(log: (line: string) => void = console.log): Promise<void> {
  // --- back-end: any ChainDevice (a request handler); the server owns protocol, memory table,
  // rings and the serving loop. The same object could sit behind virtio-mmio in a VMM. ---
  const device: ChainDevice = {
    deviceType: 0xffff, // not a spec device
    features: featureBit(VirtioFeature.VERSION_1), // VHOST_USER_F_PROTOCOL_FEATURES is added by the back-end
    queueMaxSizes: [256], // one queue of up to 256 entries
    configSize: 0,
    readConfig: (_offset, data) => data.fill(0),
    handleChain(chain, memory) {
      const input = new Uint8Array(chain.readableLength);
      readSegments(memory, chain.readable, input);
      const output = new TextEncoder().encode(new TextDecoder().decode(input).toUpperCase());
      return writeSegments(memory, chain.writable, output); // used length (or a Promise of it)
    },
  };
  const socketPath = join(mkdtempSync(join(tmpdir(), 'vu-readme-')), 'dev.sock');
  const server = new VhostUserServer(device, { socketPath, log });

  // --- frontend: guest RAM in a memfd, one split ring, kick/call eventfds ---
  const ram = new MemfdRam(1 << 20);
  const queue = new TestQueue(ram, 8, 0x10000n);
  const frontend = VhostUserFrontend.connect(socketPath);
  const acked = await frontend.start({
    wantFeatures: featureBit(VirtioFeature.VERSION_1),
    memory: [ram.region],
    queues: [queue.frontendQueue()],
  });
  log(`acked features 0x${acked.toString(16)}`);

  // The "guest": one request buffer and one reply buffer, then a kick.
  ram.memory.write(0x40000n, new TextEncoder().encode('hello, vhost-user'));
  queue.driver.add([{ addr: 0x40000n, len: 17 }], [{ addr: 0x41000n, len: 64 }]);
  const interrupt = firstValueFrom(queue.call.signals$);
  queue.kickIfNeeded();
  await interrupt; // the back-end signalled the call eventfd
  const used = queue.driver.getUsed();
  const reply = new Uint8Array(used?.len ?? 0);
  ram.memory.read(0x41000n, reply);
  log(`reply: ${new TextDecoder().decode(reply)}`);

  log(`next avail index after stop: ${await frontend.getVringBase(0)}`);
  frontend.close();
  await server.close(); // ends the session, unmaps, closes fds, removes the socket
  queue.close();
  ram.close();
}
