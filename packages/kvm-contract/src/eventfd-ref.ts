/** The part of an eventfd the contract suite uses (both `EventFd` and `SoftEventFd` fit). */
export interface ContractEventFd extends Disposable {
  readonly fd: number;
  /** read(2) of the counter (EAGAIN when it is 0 on a non-blocking eventfd). */
  read(): bigint;
  /** write(2) adding `value` to the counter. */
  write(value: bigint): void;
  /** Closes the eventfd (an irqfd or ioeventfd using it is released). */
  close(): void;
}
