/** Whether the /dev/kvm tests can run here; prints the reason once when not. */
import { kvmAvailability } from '../kvm.js';

const availability = kvmAvailability();
export const kvmAvailable = availability.available;
if (!availability.available) console.warn(`/dev/kvm tests skipped: ${availability.reason}`);
