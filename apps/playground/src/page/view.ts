/**
 * Everything the page draws from the machine: the counters, the path of each
 * request, the event log, the diagram and the status line. Drawing happens at
 * most once per animation frame, however fast the machine runs.
 */
import type { PlaygroundMachine } from '../machine.js';
import { type Counters, exitsPerRequest, type RequestRecord, type Stage, type TraceEvent } from '../trace.js';
import { Diagram } from './diagram.js';

const EVENTS_SHOWN = 80;
const REQUESTS_SHOWN = 40;

/** Chip text and style for each stage of a request's path. */
const CHIP: Record<Stage, { text: string; kind: string }> = {
  doorbell: { text: 'doorbell', kind: '' },
  ioeventfd: { text: 'ioeventfd', kind: 'kernel' },
  exit: { text: 'exit', kind: 'exit' },
  kick: { text: 'kick', kind: '' },
  pop: { text: 'device', kind: '' },
  used: { text: 'used', kind: '' },
  call: { text: 'call', kind: '' },
  irqfd: { text: 'irqfd', kind: 'kernel' },
  'irq-line': { text: 'KVM_IRQ_LINE', kind: 'vmm' },
  interrupt: { text: 'guest interrupt', kind: 'kernel' },
  verified: { text: 'checked', kind: '' },
  sleep: { text: 'sleep', kind: '' },
  grant: { text: 'grant', kind: '' },
  error: { text: 'error', kind: 'bad' },
};

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  text?: string,
  className?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

/** The fewest milliseconds between two redraws: the machine, not the drawing, should get the CPU. */
const MIN_FRAME_MS = 50;

export class View {
  readonly #diagram: Diagram;
  /** Events not drawn yet, and the newest event (for the diagram). */
  #pending: TraceEvent[] = [];
  #last: TraceEvent | undefined;
  #machine: PlaygroundMachine | undefined;
  #detach: (() => void) | undefined;
  #status = '';
  #frame = 0;
  #lastFrame = 0;
  #freshFrom = 0;
  /** The drawn request rows by id, and what each showed. */
  readonly #rows = new Map<number, { li: HTMLLIElement; key: string }>();

  constructor() {
    this.#diagram = new Diagram(document.querySelector('#diagram svg') as SVGSVGElement);
  }

  attach(machine: PlaygroundMachine): void {
    this.#detach?.();
    this.#machine = machine;
    this.#pending = [];
    this.#last = undefined;
    this.#rows.clear();
    document.querySelector('#event-list')?.replaceChildren();
    document.querySelector('#request-list')?.replaceChildren();
    this.#detach = machine.onEvent((event) => {
      this.#pending.push(event);
      if (this.#pending.length > EVENTS_SHOWN) this.#pending.shift();
      this.#last = event;
      this.invalidate();
    });
    this.invalidate();
  }

  /** Marks the events from now on as the latest step's. */
  markFresh(): void {
    this.#freshFrom = (this.#last?.seq ?? 0) + 1;
    for (const li of document.querySelectorAll('#event-list li.fresh')) li.classList.remove('fresh');
  }

  setStatus(text: string): void {
    this.#status = text;
    this.invalidate();
  }

  /** Redraws soon (at an animation frame, at most every MIN_FRAME_MS). */
  invalidate(): void {
    if (this.#frame !== 0) return;
    const wait = Math.max(0, this.#lastFrame + MIN_FRAME_MS - performance.now());
    this.#frame = 1;
    setTimeout(() => {
      requestAnimationFrame(() => {
        this.#frame = 0;
        this.#lastFrame = performance.now();
        this.render();
      });
    }, wait);
  }

  render(): void {
    const machine = this.#machine;
    if (machine === undefined) return;
    this.#renderCounters(machine.counters);
    this.#renderRequests(machine.requests);
    this.#renderEvents();
    const last = this.#last;
    const request = machine.requests.find((r) => r.id === last?.request);
    this.#diagram.show(last, request?.absorbed ?? machine.ioeventfd);
    this.#diagram.setSwitches(machine.ioeventfd, machine.irqfd);
    const status = document.querySelector('#status');
    if (status && status.textContent !== this.#status) status.textContent = this.#status;
  }

  #renderCounters(counters: Counters): void {
    const values: Record<string, string> = {};
    for (const [name, value] of Object.entries(counters)) values[name] = String(value);
    const perRequest = exitsPerRequest(counters);
    values.exitsPerRequest = Number.isInteger(perRequest) ? String(perRequest) : perRequest.toFixed(2);
    for (const node of document.querySelectorAll<HTMLElement | SVGElement>('[data-counter]')) {
      const value = values[node.dataset.counter ?? ''];
      if (value !== undefined && node.textContent !== value) node.textContent = value;
    }
  }

  /** Redraws only the rows that changed (usually the request in flight), newest first. */
  #renderRequests(requests: readonly RequestRecord[]): void {
    const list = document.querySelector('#request-list');
    if (!list) return;
    const shown = requests.slice(-REQUESTS_SHOWN);
    const keep = new Set(shown.map((r) => r.id));
    for (const [id, row] of this.#rows) {
      if (keep.has(id)) continue;
      row.li.remove();
      this.#rows.delete(id);
    }
    for (const r of shown) {
      const key = `${r.path.length}|${r.exits}|${r.ok}`;
      const row = this.#rows.get(r.id);
      if (row?.key === key) continue;
      const li = requestRow(r);
      if (row) row.li.replaceWith(li);
      else list.prepend(li);
      this.#rows.set(r.id, { li, key });
    }
  }

  /** Adds the events not drawn yet at the top, and drops the oldest past EVENTS_SHOWN. */
  #renderEvents(): void {
    const list = document.querySelector('#event-list');
    if (!list) return;
    const fresh = this.#pending;
    this.#pending = [];
    list.prepend(
      ...fresh.reverse().map((e) => {
        const li = element('li', undefined, this.#freshFrom > 0 && e.seq >= this.#freshFrom ? 'fresh' : '');
        li.dataset.stage = e.stage;
        li.append(element('span', e.request >= 0 ? `#${e.request}` : 'set-up', 'stage'), ' ', e.text);
        return li;
      }),
    );
    while (list.childElementCount > EVENTS_SHOWN) list.lastElementChild?.remove();
  }
}

/** One request's row: its path as chips, its exits and its reply. */
function requestRow(r: RequestRecord): HTMLLIElement {
  const li = element('li');
  li.value = r.id;
  li.dataset.request = String(r.id);
  li.dataset.exits = String(r.exits);
  if (r.ok !== undefined) li.dataset.ok = String(r.ok);
  const stages = r.path.filter((s) => s !== 'used');
  stages.forEach((stage, i) => {
    if (i > 0) li.append(' → ');
    const chip = CHIP[stage];
    li.append(element('span', chip.text, `chip ${chip.kind}`));
  });
  const verdict =
    r.ok === undefined ? ' …' : r.ok ? ` "${r.reply ?? ''}"` : ` wrong reply "${r.reply ?? ''}"`;
  li.append(
    element('span', ` ${r.exits} exit${r.exits === 1 ? '' : 's'}`),
    element('span', verdict, r.ok === false ? 'chip bad' : ''),
  );
  if (r.ok) li.append(' ', element('span', '✓', 'chip ok'));
  return li;
}
