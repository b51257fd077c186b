import { readSegments, serveQueue, writeSegments } from '@rxvmm/virtio-ring';
import { MockSplitDriver } from '@rxvmm/virtio-ring/testing';
import { Subject } from 'rxjs';

// A guest driver over a plain ArrayBuffer, and the device side of the same ring.
const driver = new MockSplitDriver({ size: 256, eventIdx: true });
const queue = driver.device();

// The device is a request handler; serveQueue is the loop: kicks → chains → used entries → interrupts.
const kicks = new Subject<void>(); // in a VMM: an ioeventfd's signals$
let interruptsRaised = 0;
kicks
  .pipe(
    serveQueue(queue, (chain) => {
      const request = new Uint8Array(chain.readableLength);
      readSegments(driver.memory, chain.readable, request); // bounds-checked gather
      const reply = new TextEncoder().encode(new TextDecoder().decode(request).toUpperCase());
      return writeSegments(driver.memory, chain.writable, reply); // bytes written (or a Promise of them)
    }),
  )
  .subscribe(() => interruptsRaised++); // emits only when the driver wants an interrupt; in a VMM: signal an irqfd

driver.driver.enableInterrupts();
driver.add({ readable: [new TextEncoder().encode('hello, virtio')], writable: [64] });
if (driver.needsKick()) kicks.next();

const used = driver.getUsed();
export const reply = used && new TextDecoder().decode(used.written);
export const raised = interruptsRaised;
console.log(reply, raised); // HELLO, VIRTIO 1
