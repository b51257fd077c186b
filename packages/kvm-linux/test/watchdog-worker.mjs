// Watchdog thread for the contract run (plain JS: workers run built code).
// A vCPU that runs on the main thread and sleeps in KVM_RUN (a guest waiting
// for an interrupt that never comes) blocks every timer there, so vitest's
// own timeout cannot fire. Past the deadline this thread kicks the armed
// vCPUs again and again: each run() returns 'intr', the driver's exit budget
// runs out, and the test FAILS instead of hanging the whole run.
import { parentPort } from 'node:worker_threads';
import { Kicker } from '../dist/index.js';

let kickers = [];
let timer;
let spinner;

function disarm() {
  clearTimeout(timer);
  clearInterval(spinner);
  for (const k of kickers) k.dispose();
  kickers = [];
}

parentPort.on('message', (msg) => {
  if (msg.type === 'arm') {
    disarm();
    timer = setTimeout(() => {
      spinner = setInterval(() => {
        for (const k of kickers) k.kick();
      }, 0);
    }, msg.ms);
  } else if (msg.type === 'watch') {
    kickers.push(new Kicker(msg.slot));
  } else if (msg.type === 'disarm') {
    disarm();
  }
});
