import { type Completion, chainsOnKick, interrupts, readSegments, writeSegments } from '@rxvmm/virtio-ring';
import { MockSplitDriver } from '@rxvmm/virtio-ring/test';
import { map, Subject } from 'rxjs';

// A guest driver over a plain ArrayBuffer, and the device side of the same ring.
const driver = new MockSplitDriver({ size: 256, eventIdx: true });
const queue = driver.device();

// The device is a pipeline: kicks → chains → completions → interrupts.
const kicks = new Subject<void>(); // in a VMM: an ioeventfd's signals$
let interruptsRaised = 0;
kicks
  .pipe(
    chainsOnKick(queue),
    map((chain): Completion => {
      const request = new Uint8Array(chain.readableLength);
      readSegments(driver.memory, chain.readable, request); // bounds-checked gather
      const reply = new TextEncoder().encode(new TextDecoder().decode(request).toUpperCase());
      return { head: chain.head, len: writeSegments(driver.memory, chain.writable, reply) };
    }),
    interrupts(queue), // emits only when the driver wants an interrupt (EVENT_IDX rule)
  )
  .subscribe(() => interruptsRaised++); // in a VMM: signal an irqfd

driver.driver.enableInterrupts();
driver.add({ readable: [new TextEncoder().encode('hello, virtio')], writable: [64] });
if (driver.needsKick()) kicks.next();

const used = driver.getUsed();
export const reply = used && new TextDecoder().decode(used.written);
export const raised = interruptsRaised;
console.log(reply, raised); // HELLO, VIRTIO 1
