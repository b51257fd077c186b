/**
 * The page: boots a PlaygroundMachine and wires the controls to it. Run
 * starts the stepper and the pacer; Pause stops both; Step runs one hop;
 * the switches assign or deassign KVM_IOEVENTFD and KVM_IRQFD on the running
 * VM; Reset boots a fresh VM. `body[data-state]` says where the page is
 * (booting, paused, running, done, failed) for people and for the browser test.
 */
import { PlaygroundMachine } from '../machine.js';
import { Pacer, RATES } from './pacer.js';
import { View } from './view.js';

type PageState = 'booting' | 'paused' | 'running' | 'done' | 'failed';

const $ = <T extends HTMLElement>(selector: string) => document.querySelector(selector) as T;
const controls = {
  run: $<HTMLButtonElement>('#run'),
  pause: $<HTMLButtonElement>('#pause'),
  step: $<HTMLButtonElement>('#step'),
  reset: $<HTMLButtonElement>('#reset'),
  ioeventfd: $<HTMLInputElement>('#ioeventfd'),
  irqfd: $<HTMLInputElement>('#irqfd'),
  rate: $<HTMLInputElement>('#rate'),
  rateValue: $<HTMLOutputElement>('#rate-value'),
  limit: $<HTMLInputElement>('#limit'),
};

const view = new View();
const pacer = new Pacer(() => {
  machine?.stepper.pause();
  setState('done');
});
let machine: PlaygroundMachine | undefined;
let state: PageState = 'booting';

const rate = () => RATES[Number(controls.rate.value)] ?? 5;
const limit = () => Math.max(0, Math.floor(Number(controls.limit.value) || 0));

function setState(next: PageState): void {
  state = next;
  document.body.dataset.state = next;
  controls.run.disabled = next === 'running' || next === 'booting' || next === 'failed';
  controls.pause.disabled = next !== 'running';
  controls.step.disabled = next === 'booting' || next === 'failed';
  updateStatus();
}

function updateStatus(): void {
  view.setStatus(statusText());
  // What Step would do now: a hop's label, "grant", or nothing yet (a delivery still on its way).
  const m = machine;
  document.body.dataset.next =
    m === undefined || state === 'running' ? '' : (m.stepper.next ?? (m.idle ? 'grant' : ''));
}

function statusText(): string {
  const m = machine;
  if (m === undefined || state === 'booting') return 'Booting the VM…';
  const c = m.counters;
  const progress = `${c.verified} request${c.verified === 1 ? '' : 's'} verified`;
  switch (state) {
    case 'failed':
      return `Stopped: ${m.failure ?? 'unknown error'}. Reset starts a fresh VM.`;
    case 'running':
      return `Running: ${progress}.`;
    case 'done':
      return `Done: ${progress}. Run sends more, Step goes one hop at a time.`;
    case 'paused': {
      const next = m.stepper.next;
      const where = next
        ? `Next hop: ${next}.`
        : m.idle
          ? 'The guest waits for its next request (Step lets it send one).'
          : '';
      const intro =
        c.doorbells === 0
          ? `Ready: the guest's driver set the device up in ${c.setupExits} exits. Press Run, or Step through one request.`
          : `Paused, ${progress}.`;
      return `${intro} ${where}`.trim();
    }
  }
}

async function boot(): Promise<void> {
  pacer.stop();
  machine?.close();
  machine = undefined;
  setState('booting');
  const m = await PlaygroundMachine.boot({
    ioeventfd: controls.ioeventfd.checked,
    irqfd: controls.irqfd.checked,
  });
  machine = m;
  view.attach(m);
  m.onEvent((event) => {
    if (event.stage === 'error') {
      pacer.stop();
      setState('failed');
    } else if (state !== 'running') updateStatus();
  });
  m.stepper.onAction = wrapAfter(m.stepper.onAction, () => {
    if (state === 'running') updateStatusSoon();
  });
  m.stepper.onEnqueue = () => {
    if (state !== 'running') updateStatus();
  };
  setState('paused');
}

/** Runs `after` after the stepper's own hook. */
function wrapAfter<A extends unknown[]>(
  hook: ((...args: A) => void) | undefined,
  after: () => void,
): (...args: A) => void {
  return (...args: A) => {
    hook?.(...args);
    after();
  };
}

let statusScheduled = false;
function updateStatusSoon(): void {
  if (statusScheduled) return;
  statusScheduled = true;
  requestAnimationFrame(() => {
    statusScheduled = false;
    updateStatus();
  });
}

controls.run.addEventListener('click', () => {
  if (!machine || state === 'running') return;
  view.markFresh();
  setState('running');
  machine.stepper.run();
  pacer.start(machine, rate(), limit());
});

controls.pause.addEventListener('click', () => {
  if (!machine) return;
  pacer.stop();
  machine.stepper.pause();
  setState('paused');
});

controls.step.addEventListener('click', () => {
  if (!machine) return;
  pacer.stop();
  machine.stepper.pause();
  view.markFresh();
  document.body.dataset.next = '';
  machine.step();
  if (state !== 'failed') setState('paused');
  // Eventfd deliveries and completions queue their hops on later turns (onEnqueue shows them);
  // a hop that queued nothing leaves the guest idle or asleep: say so.
  setTimeout(updateStatus, 0);
});

controls.reset.addEventListener('click', () => {
  void boot();
});

controls.ioeventfd.addEventListener('change', () => {
  machine?.setIoeventfd(controls.ioeventfd.checked);
  view.invalidate();
});

controls.irqfd.addEventListener('change', () => {
  machine?.setIrqfd(controls.irqfd.checked);
  view.invalidate();
});

function showRate(): void {
  const r = rate();
  controls.rateValue.value = Number.isFinite(r) ? String(r) : 'max';
}
controls.rate.addEventListener('input', () => {
  showRate();
  pacer.setRate(rate());
});
controls.limit.addEventListener('change', () => pacer.setLimit(limit()));

showRate();
void boot();
