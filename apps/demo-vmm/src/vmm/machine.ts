/** What one run of the demo machine reports, whatever the backend. */
import type { SnapshotFile } from '@rxvmm/snapshot';
import type { GuestResults } from '../guest/abi.js';
import type { SnapshotMoment } from './kvm-snapshot.js';

export interface MachineRun {
  backend: 'kvm' | 'soft';
  results: GuestResults;
  exits: { total: number; mmio: number; io: number; hlt: number; intr: number; other: number };
  /** Kick eventfd counter values the back-end consumed. */
  kicks: number;
  /** Of those, signalled by the kernel's ioeventfd (0 with --no-ioeventfd). */
  ioeventfdSignals: number;
  /** Interrupts injected by writing the irqfd's eventfd. */
  irqfdInjections: number;
  /** Interrupts injected with KVM_IRQ_LINE (--no-irqfd). */
  irqLineInjections: number;
  /** Process start (performance.timeOrigin) to the guest's HELLO exit. */
  startupMs: number | undefined;
  /** Process start to the guest's first access to the device (undefined after a restore: it was before). */
  firstDeviceAccessMs: number | undefined;
  /** Guest HELLO to DONE. */
  seconds: number;
  /** virtio Status as the register file left it. */
  deviceStatus: number;
  /** Why the device went to NEEDS_RESET, if it did. */
  deviceFailure: string | undefined;
  /** How the vCPU run ended ('done' when the guest reported DONE, 'snapshot' after --snapshot). */
  end: string;
  guestRamBytes: number;
  /** With --snapshot-after: the file written and what it cost. */
  snapshot?: {
    path: string;
    bytes: number;
    /** Pausing the guest and the device, collecting every part and writing the file. */
    saveMs: number;
    pendingDoorbells: number;
    pendingInterrupt: boolean;
  };
  /** With --restore: the file and process start → the resumed guest's next instruction. */
  restore?: { path: string; bytes: number; resumeMs: number; memory: 'private' | 'copy' };
}

export interface MachineOptions {
  diskPath: string;
  requests: number;
  blockSize: number;
  ioeventfd: boolean;
  irqfd: boolean;
  vhostUser: string | undefined;
  guestMode: 'normal' | 'bad-queue-addr' | 'bad-head';
  /** Called about every 100 ms with the guest's verified requests and completed transfers (writes + reads). */
  onProgress?: (verified: number, completed: number) => void;
  /** Stops the run (e.g. Ctrl-C): the machine shuts down cleanly and reports `end: 'aborted'`. */
  signal?: AbortSignal;
  /** Give up when the guest makes no progress for this long (default 20 s). */
  stallMs?: number;
  /** Pause after this many verified requests, write a snapshot to `path` and end the run. */
  snapshot?: { after: number; path: string; at: SnapshotMoment; writer: string };
  /** Resume the machine of an opened, checked snapshot instead of booting. */
  restore?: SnapshotFile;
  /** How the restore loads guest RAM: mapped privately from the file (lazy) or copied into memfd RAM. */
  restoreMemory?: 'private' | 'copy';
}
