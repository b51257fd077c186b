/** The part of an eventfd the contract suite uses (both `EventFd` and `SoftEventFd` fit). */
export interface ContractEventFd extends Disposable {
  readonly fd: number;
  read(): bigint;
  write(value: bigint): void;
  close(): void;
}
