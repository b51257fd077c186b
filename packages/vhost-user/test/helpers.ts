// Test rigs: a server with captured logs, a raw frontend that can send any
// bytes and fds, and a "can it still serve?" probe.

import { setNonBlocking, unixConnect, unixSocket } from '@rxvmm/sys';
import { firstValueFrom } from 'rxjs';
import { expect } from 'vitest';
import {
  encodeMessage,
  FLAG_NEED_REPLY,
  MessageChannel,
  type RawMessage,
  VERSION,
  VhostUserFrontend,
  VhostUserServer,
} from '../src/index.js';
import { MemfdRam, TestQueue } from '../src/testing/index.js';
import { EchoDevice } from '@rxvmm/virtio-ring/testing';

export interface Rig {
  server: VhostUserServer;
  device: EchoDevice;
  logs: string[];
  path: string;
  /** Resolves with the reason of the next session end not yet consumed. */
  nextEnd(): Promise<string | null>;
}

export function startServer(path: string, device = new EchoDevice({ queues: 2 })): Rig {
  const logs: string[] = [];
  const waiters: ((r: string | null) => void)[] = [];
  const ended: (string | null)[] = []; // session ends nobody waited for yet
  const server = new VhostUserServer(device, {
    socketPath: path,
    log: (l) => logs.push(l),
    onSessionEnd: (_s, reason) => {
      const w = waiters.shift();
      if (w) w(reason);
      else ended.push(reason);
    },
  });
  return {
    server,
    device,
    logs,
    path,
    nextEnd: () =>
      ended.length > 0
        ? Promise.resolve(ended.shift() as string | null)
        : new Promise((r) => waiters.push(r)),
  };
}

/** A frontend that sends whatever it is told to, and collects replies / the close. */
export class RawFrontend {
  readonly channel: MessageChannel;
  readonly replies: RawMessage[] = [];
  private waiting: ((m: RawMessage | null) => void)[] = [];
  closedReason: string | null | undefined = undefined;
  readonly closed: Promise<string | null>;

  constructor(path: string) {
    const fd = unixSocket(false);
    unixConnect(fd, path);
    setNonBlocking(fd, true);
    let resolveClosed!: (r: string | null) => void;
    this.closed = new Promise((r) => {
      resolveClosed = r;
    });
    this.channel = new MessageChannel(
      fd,
      {
        onMessage: (m) => {
          const w = this.waiting.shift();
          if (w) w(m);
          else this.replies.push(m);
        },
        onClose: (reason) => {
          this.closedReason = reason;
          for (const w of this.waiting.splice(0)) w(null);
          resolveClosed(reason);
        },
      },
      true,
    );
  }

  send(
    request: number,
    payload: Uint8Array = new Uint8Array(0),
    fds: number[] = [],
    flags: number = VERSION,
  ): void {
    this.sendBytes(encodeMessage(request, flags, payload), fds);
  }

  sendAck(request: number, payload: Uint8Array = new Uint8Array(0), fds: number[] = []): void {
    this.send(request, payload, fds, VERSION | FLAG_NEED_REPLY);
  }

  sendBytes(bytes: Uint8Array, fds: number[] = []): void {
    expect(this.channel.send(bytes, fds)).toBe(true);
  }

  /** The next reply, or null if the back-end closed the connection. */
  next(): Promise<RawMessage | null> {
    const r = this.replies.shift();
    if (r) return Promise.resolve(r);
    if (this.closedReason !== undefined) return Promise.resolve(null);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  close(): void {
    this.channel.close(null);
  }
}

/** Proves the server still works: a fresh frontend runs a full request through a ring. */
export async function expectServes(rig: Rig): Promise<void> {
  const ram = new MemfdRam(1 << 20);
  const q = new TestQueue(ram, 8, 0x10000n);
  const fe = VhostUserFrontend.connect(rig.path);
  try {
    await fe.start({ wantFeatures: 1n << 32n, memory: [ram.region], queues: [q.frontendQueue()] });
    const text = new TextEncoder().encode('still alive');
    ram.memory.write(0x41000n, text);
    q.driver.add([{ addr: 0x41000n, len: text.length }], [{ addr: 0x40000n, len: 32 }]);
    const called = firstValueFrom(q.call.signals$);
    q.kickIfNeeded();
    await called;
    const used = q.driver.getUsed();
    const out = new Uint8Array(used?.len ?? 0);
    ram.memory.read(0x40000n, out);
    expect(new TextDecoder().decode(out)).toBe('STILL ALIVE');
  } finally {
    const ended = rig.nextEnd();
    fe.close();
    await ended;
    q.close();
    ram.close();
  }
}
