/**
 * Builds the device's back-end side (local VirtioBlk, or a vhost-user proxy)
 * and what the register file needs to know about it (features, queue sizes,
 * configuration bytes).
 */

import { type ErrnoCode, errnoError } from '@rxvmm/errno';
import type { GuestMemory } from '@rxvmm/guest-memory';
import { VIRTIO_BLK_CONFIG_SIZE, VIRTIO_ID_BLOCK, VirtioBlk } from '@rxvmm/virtio-blk';
import { SetupError } from '../setup-error.js';
import { BlockService, type DeviceService, VhostService } from './backends.js';
import { DEVICE_QUEUE_MAX } from './layout.js';

export interface DeviceDescription {
  deviceType: number;
  features: bigint;
  queueMaxSizes: number[];
  config: Uint8Array;
}

export interface OpenDeviceOptions {
  diskPath: string;
  /** Guest RAM, as the local device reads it (`new GuestMemory(vm.memoryRegions())`). */
  memory: GuestMemory;
  /** Guest RAM regions (memfd fd + offset needed for vhost-user). */
  regions: readonly {
    guestPhysAddr: bigint;
    size: number;
    bytes: Uint8Array;
    fd: number;
    fdOffset: number;
  }[];
  shared: SharedArrayBuffer;
  inject: () => void;
  vhostUser: string | undefined;
  /** The kick eventfd (ioeventfd's, or written by the vCPU thread): given to a vhost-user back-end. */
  kickFd: number;
  /** The irqfd's eventfd, for a vhost-user back-end to signal directly (undefined: --no-irqfd). */
  callFd: number | undefined;
}

export async function openDevice(
  options: OpenDeviceOptions,
): Promise<{ service: DeviceService; description: DeviceDescription }> {
  if (options.vhostUser !== undefined) {
    // Loaded only when asked for: one module graph less on the way to the guest's first instruction.
    const { identityMappedRegions, VhostUserDeviceProxy } = await import('@rxvmm/vhost-user');
    const socket = options.vhostUser;
    const proxy = await VhostUserDeviceProxy.connect(socket, {
      deviceType: VIRTIO_ID_BLOCK,
      memory: identityMappedRegions(options.regions),
      queueMaxSizes: [DEVICE_QUEUE_MAX],
      notifiers: [
        options.callFd === undefined
          ? { kickFd: options.kickFd }
          : { kickFd: options.kickFd, callFd: options.callFd },
      ],
    }).catch((error: Error & { code?: string }) => {
      throw vhostUserConnectError(socket, error);
    });
    const config = new Uint8Array(60);
    proxy.readConfig(0, config);
    return {
      service: new VhostService(proxy, options.shared, options.inject),
      description: {
        deviceType: VIRTIO_ID_BLOCK,
        features: proxy.features,
        queueMaxSizes: [DEVICE_QUEUE_MAX],
        config,
      },
    };
  }
  const blk = await VirtioBlk.open(options.diskPath, {
    memory: options.memory,
    queueSize: DEVICE_QUEUE_MAX,
    serial: 'rxvmm-demo',
    io: 'async',
  });
  const config = new Uint8Array(VIRTIO_BLK_CONFIG_SIZE);
  blk.readConfig(0, config);
  return {
    service: new BlockService(blk, options.shared, options.inject),
    description: {
      deviceType: blk.deviceType,
      features: blk.features,
      queueMaxSizes: [...blk.queueMaxSizes],
      config,
    },
  };
}

/** A failed connection to the vhost-user back-end, naming the socket and what to do. */
function vhostUserConnectError(socket: string, error: Error & { code?: string }): Error {
  const start = `start the back-end first (rxvmm-vhost-blk --socket-path ${socket} --blk-file DISK)`;
  switch (error.code) {
    case 'ENOENT':
      return new SetupError(
        `no vhost-user back-end at ${socket}: there is no socket there; ${start}`,
        error.code,
      );
    case 'ECONNREFUSED':
      return new SetupError(
        `no vhost-user back-end at ${socket}: nothing listens on that socket (its back-end has gone); ${start}`,
        error.code,
      );
    case 'EACCES':
    case 'EPERM':
      return new SetupError(
        `cannot connect to the vhost-user back-end at ${socket}: this user may not; fix the permissions of the socket and its directory`,
        error.code,
      );
    case 'ENOTSOCK':
      return new SetupError(
        `--vhost-user ${socket} is not a socket: give the back-end's --socket-path`,
        error.code,
      );
    default:
      return errnoError(
        (error.code ?? 'EIO') as ErrnoCode,
        `vhost-user back-end at ${socket}: ${error.message.replace(/^E[A-Z]+: /, '')}`,
      );
  }
}
