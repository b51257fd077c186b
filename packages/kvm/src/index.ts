// The interface (types only) and the KVM UAPI values it is written in: no runtime code beyond constants.
export * from './constants/exits.js';
export * from './constants/ioeventfd.js';
export * from './constants/irq-routing.js';
export * from './constants/irqfd.js';
export * from './constants/memory.js';
export * from './constants/registers.js';
export type * from './interface.js';
export type * from './irq-routing.js';
export type * from './vcpu-state.js';
export type * from './wiring.js';
