// The back-end side of the round-trip benchmark, in its own process: a
// VhostUserServer with a device that completes every chain at once (no I/O),
// so the figure is the protocol + ring + notification path alone.
import { VhostUserServer } from '../dist/index.js';

const device = {
  features: 1n << 32n,
  numQueues: 1,
  maxQueueSize: 256,
  readConfig: () => new Uint8Array(0),
  handleChain: (chain) => chain.writableLength,
};
const server = new VhostUserServer(device, { socketPath: process.argv[2], log: () => {} });
process.send?.('ready');
process.on('message', async (m) => {
  if (m === 'stop') {
    await server.close();
    process.exit(0);
  }
});
