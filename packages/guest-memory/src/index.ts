export { GuestMemoryError } from './errors.js';
export {
  GuestMemory,
  type GuestMemoryRegionInit,
  type HostRegion,
  MAX_GUEST_PHYS,
} from './guest-memory.js';
