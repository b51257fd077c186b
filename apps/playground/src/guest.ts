/**
 * The guest: a virtio-mmio driver for the echo device, written as a SoftKvm
 * guest program (a TypeScript generator that `yield*`s every operation that
 * may leave the guest). It sets the device up once, then sends requests one
 * at a time, as many as the VMM grants through the mailbox: each is a
 * two-descriptor chain (the request to read, a buffer for the reply) made
 * available on queue 0, a doorbell (a 4-byte write of 0 to QueueNotify), a
 * sleep until the device's interrupt, and a check that the reply is the
 * request upper-cased. Its interrupt handler reads InterruptStatus and writes
 * InterruptACK (the two exits every request costs when the doorbell is
 * absorbed) and EOIs the local APIC (in the kernel: no exit).
 *
 * The program also tells the page what it does through `probe`, as a real
 * guest might through a trace buffer: these calls are plain function calls
 * inside `run()`, never exits.
 */
import type { Guest, GuestProgram, GuestStep } from '@rxvmm/kvm-soft';
import { DeviceStatus } from '@rxvmm/virtio';
import { ECHO_DEVICE_TYPE } from '@rxvmm/virtio-ring/testing';
import {
  AVAIL_RING,
  DESC_TABLE,
  DEVICE_VECTOR,
  Mailbox,
  MMIO_BASE,
  mailboxAddr,
  QUEUE_SIZE,
  REPLY_BUF,
  REPLY_SIZE,
  REQUEST_BUF,
  Reg,
  USED_RING,
} from './layout.js';

/** What the guest reports as it goes (plain calls, no exits). */
export interface GuestProbe {
  /** The guest is about to ring the doorbell for request `request`. */
  doorbell(request: number): void;
  /** The guest took interrupt `vector` (its handler runs next). */
  interrupt(vector: number): void;
  /** The guest checked the reply to `request`. */
  verified(request: number, ok: boolean, reply: string): void;
}

/** Request `i`'s text; the echo device answers it upper-cased. */
export function requestText(i: number): string {
  return `ping ${i} from the guest`;
}

/** Why the driver gave up setting the device up (Mailbox.setupError). */
export const SetupError = { noDevice: 1, features: 2, queue: 3 } as const;

const VIRTQ_DESC_F_NEXT = 1;
const VIRTQ_DESC_F_WRITE = 2;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function playgroundGuest(probe: GuestProbe): GuestProgram {
  return function* (g: Guest): GuestStep<void> {
    const mailbox = {
      get: (word: number) => g.readU32(mailboxAddr(word)),
      set: (word: number, value: number) => g.writeU32(mailboxAddr(word), value),
    };
    function* rd(reg: number): GuestStep<number> {
      return Number(yield* g.mmioRead(MMIO_BASE + BigInt(reg), 4));
    }
    function* wr(reg: number, value: number | bigint): GuestStep<void> {
      yield* g.mmioWrite(MMIO_BASE + BigInt(reg), 4, BigInt(value) & 0xffff_ffffn);
    }

    let deviceInterrupts = 0;
    g.setInterruptHandler(function* (vector) {
      probe.interrupt(vector);
      if (vector === DEVICE_VECTOR) {
        const status = yield* rd(Reg.interruptStatus);
        if (status !== 0) yield* wr(Reg.interruptAck, status);
        deviceInterrupts++;
      }
      yield* g.eoi();
    });
    yield* g.enableApic({ maskLint0: true });

    // Driver initialisation, virtio 1.2 §3.1.1.
    if (
      (yield* rd(Reg.magic)) !== 0x74726976 ||
      (yield* rd(Reg.version)) !== 2 ||
      (yield* rd(Reg.deviceId)) !== ECHO_DEVICE_TYPE
    ) {
      mailbox.set(Mailbox.setupError, SetupError.noDevice);
      return;
    }
    yield* wr(Reg.status, 0);
    yield* wr(Reg.status, DeviceStatus.ACKNOWLEDGE);
    yield* wr(Reg.status, DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER);
    yield* wr(Reg.deviceFeaturesSel, 1);
    if (((yield* rd(Reg.deviceFeatures)) & 1) === 0) {
      mailbox.set(Mailbox.setupError, SetupError.features);
      return;
    }
    // VIRTIO_F_VERSION_1 only: no event index, so the device interrupts after every request.
    yield* wr(Reg.driverFeaturesSel, 0);
    yield* wr(Reg.driverFeatures, 0);
    yield* wr(Reg.driverFeaturesSel, 1);
    yield* wr(Reg.driverFeatures, 1);
    const featuresOk = DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK;
    yield* wr(Reg.status, featuresOk);
    if (((yield* rd(Reg.status)) & DeviceStatus.FEATURES_OK) === 0) {
      mailbox.set(Mailbox.setupError, SetupError.features);
      return;
    }
    yield* wr(Reg.queueSel, 0);
    if ((yield* rd(Reg.queueNumMax)) < QUEUE_SIZE) {
      mailbox.set(Mailbox.setupError, SetupError.queue);
      return;
    }
    yield* wr(Reg.queueNum, QUEUE_SIZE);
    yield* wr(Reg.queueDescLow, DESC_TABLE);
    yield* wr(Reg.queueDescHigh, 0);
    yield* wr(Reg.queueDriverLow, AVAIL_RING);
    yield* wr(Reg.queueDriverHigh, 0);
    yield* wr(Reg.queueDeviceLow, USED_RING);
    yield* wr(Reg.queueDeviceHigh, 0);
    yield* wr(Reg.queueReady, 1);
    yield* wr(Reg.status, featuresOk | DeviceStatus.DRIVER_OK);
    mailbox.set(Mailbox.ready, 1);

    const setDesc = (i: number, addr: bigint, len: number, flags: number, next: number) => {
      const d = DESC_TABLE + BigInt(16 * i);
      g.writeU64(d, addr);
      g.writeU32(d + 8n, len);
      g.writeU16(d + 12n, flags);
      g.writeU16(d + 14n, next);
    };
    let availIdx = 0;
    let usedIdx = 0;
    g.sti();
    for (let i = 0; ; i++) {
      // Sleep until the VMM grants request i (it sends a tick MSI when it does).
      for (;;) {
        g.cli();
        if (mailbox.get(Mailbox.granted) > i) break;
        mailbox.set(Mailbox.waitingForGrant, 1);
        yield* g.waitForInterrupt();
      }
      mailbox.set(Mailbox.waitingForGrant, 0);
      g.sti();

      const request = encoder.encode(requestText(i));
      g.write(REQUEST_BUF, request);
      g.write(REPLY_BUF, new Uint8Array(REPLY_SIZE));
      setDesc(0, REQUEST_BUF, request.length, VIRTQ_DESC_F_NEXT, 1);
      setDesc(1, REPLY_BUF, REPLY_SIZE, VIRTQ_DESC_F_WRITE, 0);
      g.writeU16(AVAIL_RING + 4n + 2n * BigInt(availIdx % QUEUE_SIZE), 0);
      availIdx = (availIdx + 1) & 0xffff;
      g.writeU16(AVAIL_RING + 2n, availIdx);
      mailbox.set(Mailbox.sent, i + 1);

      probe.doorbell(i);
      const seen = deviceInterrupts;
      yield* wr(Reg.queueNotify, 0);
      // Sleep until the reply is in the used ring and its interrupt was taken.
      for (;;) {
        g.cli();
        if (g.readU16(USED_RING + 2n) !== usedIdx && deviceInterrupts !== seen) break;
        yield* g.waitForInterrupt();
      }
      g.sti();
      const element = USED_RING + 4n + 8n * BigInt(usedIdx % QUEUE_SIZE);
      const head = g.readU32(element);
      const written = g.readU32(element + 4n);
      usedIdx = (usedIdx + 1) & 0xffff;
      const reply = decoder.decode(g.read(REPLY_BUF, Math.min(written, REPLY_SIZE)));
      const ok = head === 0 && reply === requestText(i).toUpperCase();
      if (ok) mailbox.set(Mailbox.verified, mailbox.get(Mailbox.verified) + 1);
      else mailbox.set(Mailbox.failed, mailbox.get(Mailbox.failed) + 1);
      probe.verified(i, ok, reply);
    }
  };
}
