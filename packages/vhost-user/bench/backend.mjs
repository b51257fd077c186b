// The back-end side of the round-trip benchmark, in its own process: a
// VhostUserServer with a device that completes every chain at once (no I/O),
// so the figure is the protocol + ring + notification path alone.
import { VhostUserServer } from '../dist/index.js';

/** A ChainDevice (`@rxvmm/virtio-ring`) with one queue, VIRTIO_F_VERSION_1 and no configuration space. */
const device = {
  deviceType: 0,
  features: 1n << 32n,
  queueMaxSizes: [256],
  configSize: 0,
  readConfig: (_offset, data) => data.fill(0),
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
