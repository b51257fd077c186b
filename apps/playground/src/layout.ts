/**
 * Where things are in the playground machine: guest RAM, the virtio-mmio
 * window, the rings, the request buffers, the mailbox the VMM and the guest
 * share, and the interrupt routes. The numbers follow `rxvmm-demo`
 * (apps/demo-vmm/src/vmm/layout.ts): the same window, QueueNotify ioeventfd
 * (4 bytes, datamatch 0) and MSI route on GSI 24.
 */

/** Guest RAM from GPA 0: one SoftKvm slot. */
export const RAM_SIZE = 0x10_0000;
/** The virtio-mmio register window. */
export const MMIO_BASE = 0xd000_0000n;
export const MMIO_SIZE = 0x1000;
/** The virtio-mmio registers the guest touches (offsets in the window, virtio 1.2 §4.2.2). */
export const Reg = {
  magic: 0x000,
  version: 0x004,
  deviceId: 0x008,
  deviceFeatures: 0x010,
  deviceFeaturesSel: 0x014,
  driverFeatures: 0x020,
  driverFeaturesSel: 0x024,
  queueSel: 0x030,
  queueNumMax: 0x034,
  queueNum: 0x038,
  queueReady: 0x044,
  queueNotify: 0x050,
  interruptStatus: 0x060,
  interruptAck: 0x064,
  status: 0x070,
  queueDescLow: 0x080,
  queueDescHigh: 0x084,
  queueDriverLow: 0x090,
  queueDriverHigh: 0x094,
  queueDeviceLow: 0x0a0,
  queueDeviceHigh: 0x0a4,
} as const;
/** QueueNotify: where the ioeventfd sits. */
export const QUEUE_NOTIFY_ADDR = MMIO_BASE + BigInt(Reg.queueNotify);

/** Queue 0 as the guest lays it out (split ring, 16 entries). */
export const QUEUE_SIZE = 16;
export const DESC_TABLE = 0x1000n;
export const AVAIL_RING = 0x2000n;
export const USED_RING = 0x3000n;
/** Each request's buffers: the request the device reads, the reply it writes. */
export const REQUEST_BUF = 0x4000n;
export const REPLY_BUF = 0x4100n;
export const REPLY_SIZE = 128;

/**
 * The mailbox: u32 words in guest RAM. The VMM writes `granted` (how many
 * requests the guest may have sent: the page's pacing); the guest writes the
 * rest, so the page can show its progress without a single exit.
 */
export const MAILBOX = 0x800n;
export const Mailbox = {
  /** Requests the guest may send (VMM → guest). */
  granted: 0,
  /** Requests the guest has sent (rang the doorbell for). */
  sent: 1,
  /** Requests whose reply the guest checked and found right. */
  verified: 2,
  /** Requests whose reply was wrong. */
  failed: 3,
  /** 1 while the guest sleeps waiting for `granted` to grow. */
  waitingForGrant: 4,
  /** 1 once the driver finished setting the device up (DRIVER_OK). */
  ready: 5,
  /** Non-zero when the driver gave up: which step failed. */
  setupError: 6,
} as const;
export const mailboxAddr = (word: number): bigint => MAILBOX + BigInt(4 * word);

/**
 * The device interrupt: GSI 24 routed as an MSI to APIC 0, vector 0x41
 * (fixed, edge). The irqfd sits on this GSI; with irqfd off the VMM raises
 * the same GSI with KVM_IRQ_LINE, which on an MSI route delivers the message.
 */
export const DEVICE_GSI = 24;
export const DEVICE_VECTOR = 0x41;
export const DEVICE_MSI = { addressLo: 0xfee0_0000, addressHi: 0, data: DEVICE_VECTOR } as const;
/** The pacing tick: an MSI the VMM sends (KVM_SIGNAL_MSI) to wake a guest waiting for a grant. */
export const TICK_VECTOR = 0x30;
export const TICK_MSI = { addressLo: 0xfee0_0000, addressHi: 0, data: TICK_VECTOR } as const;
