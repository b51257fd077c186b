/**
 * (e) A device loop over a ring, driven by the shipped mock driver: no guest, no VMM.
 *
 * The device is a request handler (it reverses each request, taking longer for shorter
 * ones, so completions come back out of order); `serveQueue` is the loop that pops chains
 * on a kick, runs the handler, publishes used entries and decides on interrupts. The same
 * handler serves a split and a packed ring. Last, a hostile driver publishes a descriptor
 * that points outside guest RAM: the loop ends with a VirtqueueError (a device would set
 * NEEDS_RESET) and nothing is thrown into the event loop.
 *
 * Run: node dist/ring-device-loop.js
 */
import * as assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type ChainHandler,
  type GuestMemory,
  readSegments,
  serveQueue,
  VirtqueueError,
  writeSegments,
} from '@rxvmm/virtio-ring';
import { MockPackedDriver, MockSplitDriver } from '@rxvmm/virtio-ring/testing';
import { lastValueFrom, Subject, tap } from 'rxjs';

const encode = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

/** The device: the request reversed into the chain's writable buffers; returns the bytes written. */
function reverser(memory: GuestMemory): ChainHandler {
  return async (chain) => {
    const request = new Uint8Array(chain.readableLength);
    readSegments(memory, chain.readable, request); // bounds-checked gather from guest RAM
    await sleep(5 * (10 - request.length)); // the "I/O": short requests finish last
    return writeSegments(memory, chain.writable, request.reverse());
  };
}

// EVENT_IDX negotiated: the driver says after which used entry it wants an interrupt.
for (const driver of [
  new MockSplitDriver({ size: 16, eventIdx: true }),
  new MockPackedDriver({ size: 16, eventIdx: true }),
]) {
  const kicks = new Subject<void>(); // in a VMM: an ioeventfd's signals$
  let interrupts = 0; // in a VMM: each emission signals an irqfd
  const loop = lastValueFrom(
    kicks.pipe(
      serveQueue(driver.device(), reverser(driver.memory)),
      tap(() => interrupts++),
    ),
    { defaultValue: undefined },
  );

  driver.driver.enableInterrupts(); // "interrupt me after the next used buffer"
  const words = ['ring', 'a', 'virtqueue', 'is'];
  for (const word of words) driver.add({ readable: [encode(word)], writable: [16] });
  if (driver.needsKick()) kicks.next(); // one kick for all four buffers
  kicks.complete(); // stop: the loop finishes the chains in flight, publishes them, completes
  await loop;

  const replies = driver.drainUsed().map((used) => decode(used.written));
  assert.deepEqual(replies, ['eueuqtriv', 'gnir', 'si', 'a']); // longest first: out of order
  assert.equal(interrupts, 1); // the first batch; the driver did not re-arm for the later ones
  const kind = driver instanceof MockSplitDriver ? 'split' : 'packed';
  console.log(`${kind} ring: 1 kick, ${words.length} buffers used in the order ${replies.join(' ')}`);
  console.log(`${kind} ring: ${interrupts} interrupt(s) for ${words.length} used buffers`);
}

// A hostile driver: a descriptor 1 MiB past the end of guest RAM.
const hostile = new MockSplitDriver({ size: 16 });
hostile.setDescriptor(0, { addr: hostile.guestBase + (16n << 20n), len: 64 });
hostile.publishHead(0);
const kicks = new Subject<void>();
const failure = lastValueFrom(kicks.pipe(serveQueue(hostile.device(), reverser(hostile.memory)))).then(
  () => assert.fail('the loop should have failed'),
  (error: unknown) => error,
);
kicks.next();
const error = await failure;
assert.ok(error instanceof VirtqueueError);
console.log(`hostile ring: the loop ended with ${error.code} (${error.reason}): the device sets NEEDS_RESET`);
