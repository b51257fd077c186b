// The example of README.md: a VMM-side virtio-mmio window in front of a tiny device.
import {
  DeviceStatus,
  featureBit,
  type VirtioActivation,
  type VirtioDevice,
  VirtioFeature,
} from '@rxvmm/virtio';
import { MmioRegister, VirtioMmioTransport } from '@rxvmm/virtio-mmio';

/** A device with one queue whose config space is a 4-byte counter. */
class CounterDevice implements VirtioDevice {
  readonly deviceType = 42;
  readonly features = featureBit(VirtioFeature.VERSION_1);
  readonly queueMaxSizes = [64];
  counter = 7;
  activation: VirtioActivation | undefined;
  readConfig(offset: number, data: Uint8Array): void {
    const bytes = new Uint8Array(new Uint32Array([this.counter]).buffer);
    data.forEach((_, i) => {
      data[i] = bytes[offset + i] ?? 0;
    });
  }
  writeConfig(): void {}
  activate(activation: VirtioActivation): void {
    this.activation = activation; // a real device does openQueue(memory, q) for each of activation.queues
  }
  reset(): void {
    this.activation = undefined;
  }
  queueNotify(queue: number): void {
    this.activation?.signalUsedBuffer(queue); // pretend the request completed
  }
}

export function runExample(): string[] {
  const log: string[] = [];
  const transport = new VirtioMmioTransport(new CounterDevice(), {
    // A VMM passes e.g. GuestMemory#isValidRange so queues outside RAM are refused.
    isValidRange: (addr, len) => addr + BigInt(len) <= 0x1000_0000n,
  });
  // Wire interrupts: an irqfd would get `efd.write(1n)` here, KVM_IRQ_LINE would follow irqLevel$.
  transport.interrupt$.subscribe(({ bits, status }) => log.push(`interrupt bits=${bits} status=${status}`));
  transport.activated$.subscribe(({ features, queues }) =>
    log.push(
      `activated features=0x${features.toString(16)} queue0 size=${queues[0]?.size} desc=0x${queues[0]?.descTable.toString(16)}`,
    ),
  );

  // What a guest driver does (an MMIO exit handler calls transport.handleMmio(offset, isWrite, data)).
  const w = (reg: number, value: number) => transport.write(reg, 4, value);
  const r = (reg: number) => transport.read(reg, 4);
  log.push(
    `magic=0x${r(MmioRegister.MagicValue).toString(16)} version=${r(MmioRegister.Version)} device=${r(MmioRegister.DeviceID)}`,
  );
  w(MmioRegister.Status, 0);
  w(MmioRegister.Status, DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER);
  w(MmioRegister.DriverFeaturesSel, 1);
  w(MmioRegister.DriverFeatures, 1); // VIRTIO_F_VERSION_1 is bit 32
  w(MmioRegister.Status, DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK);
  w(MmioRegister.QueueSel, 0);
  w(MmioRegister.QueueNum, 64);
  w(MmioRegister.QueueDescLow, 0x10000);
  w(MmioRegister.QueueDriverLow, 0x10400);
  w(MmioRegister.QueueDeviceLow, 0x10600);
  w(MmioRegister.QueueReady, 1);
  w(MmioRegister.Status, r(MmioRegister.Status) | DeviceStatus.DRIVER_OK);
  log.push(`config counter=${transport.read(MmioRegister.Config, 4)}`);
  w(MmioRegister.QueueNotify, 0);
  log.push(`InterruptStatus=${r(MmioRegister.InterruptStatus)}`);
  w(MmioRegister.InterruptACK, 1);
  log.push(`status=0x${r(MmioRegister.Status).toString(16)}`);
  return log;
}

if (process.argv[1]?.endsWith('readme-example.ts')) console.log(runExample().join('\n'));
