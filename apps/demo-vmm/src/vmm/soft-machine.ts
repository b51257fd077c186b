import type { MachineOptions, MachineRun } from './machine.js';
export async function runOnSoft(_o: MachineOptions): Promise<MachineRun> {
  throw new Error('soft: todo');
}
