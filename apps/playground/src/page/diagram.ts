/**
 * The diagram: which box and which arrows light up for an event, and which
 * boxes are switched off (ioeventfd, irqfd).
 */
import type { TraceEvent } from '../trace.js';

type NodeId = 'guest' | 'ioeventfd' | 'kick' | 'device' | 'vmm' | 'call' | 'irqfd' | 'lapic';
type EdgeId =
  | 'doorbell'
  | 'signal'
  | 'signals'
  | 'exit'
  | 'notify'
  | 'used'
  | 'callfd'
  | 'msi'
  | 'callvmm'
  | 'irqline'
  | 'interrupt';

/** The boxes and arrows an event lights up. `absorbed`: the request's doorbell went through the ioeventfd. */
export function highlightFor(event: TraceEvent, absorbed: boolean): { nodes: NodeId[]; edges: EdgeId[] } {
  switch (event.stage) {
    case 'doorbell':
    case 'verified':
    case 'sleep':
      return { nodes: ['guest'], edges: [] };
    case 'ioeventfd':
      return { nodes: ['ioeventfd', 'kick'], edges: ['doorbell', 'signal'] };
    case 'exit':
      return { nodes: ['vmm'], edges: ['exit'] };
    case 'kick':
      return absorbed ? { nodes: ['device'], edges: ['signals'] } : { nodes: ['device'], edges: ['notify'] };
    case 'pop':
    case 'used':
      return { nodes: ['device'], edges: [] };
    case 'call':
      return { nodes: ['call'], edges: ['used'] };
    case 'irqfd':
      return { nodes: ['irqfd', 'lapic'], edges: ['callfd', 'msi'] };
    case 'irq-line':
      return { nodes: ['vmm', 'lapic'], edges: ['callvmm', 'irqline'] };
    case 'interrupt':
      return { nodes: ['guest', 'lapic'], edges: ['interrupt'] };
    case 'grant':
    case 'error':
      return { nodes: ['vmm'], edges: [] };
  }
}

export class Diagram {
  readonly #root: ParentNode;

  constructor(root: ParentNode) {
    this.#root = root;
  }

  show(event: TraceEvent | undefined, absorbed: boolean): void {
    for (const hot of this.#root.querySelectorAll('.hot')) hot.classList.remove('hot');
    if (event === undefined) return;
    const { nodes, edges } = highlightFor(event, absorbed);
    for (const id of nodes) this.#root.querySelector(`#node-${id}`)?.classList.add('hot');
    for (const id of edges) this.#root.querySelector(`#edge-${id}`)?.classList.add('hot');
  }

  setSwitches(ioeventfd: boolean, irqfd: boolean): void {
    this.#root.querySelector('#node-ioeventfd')?.classList.toggle('off', !ioeventfd);
    this.#root.querySelector('#node-kick')?.classList.toggle('off', !ioeventfd);
    this.#root.querySelector('#node-irqfd')?.classList.toggle('off', !irqfd);
  }
}
