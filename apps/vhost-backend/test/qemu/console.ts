// Parses the serial console of the test guest (scripts/guest/init + blkwork). Lines of interest
// carry a tag and one JSON object; kernel messages may interleave, so a tag is found anywhere in a line.

export interface StepBegin {
  op: string;
  step: string;
  /** The guest device the step runs on (e.g. /dev/vda). */
  dev: string;
}

export interface StepResult {
  op: string;
  step: string;
  dev: string;
  ok: boolean;
  bytes?: number;
  ops?: number;
  ns?: number;
  error?: string;
  mismatchAt?: number;
}

export type ConsoleEvent =
  | { kind: 'device'; path: string; bytes: number; readOnly: boolean }
  | { kind: 'queues'; count: number }
  /** The virtio features the guest driver accepted, one 0/1 character per bit from bit 0. */
  | { kind: 'features'; bits: string }
  /** One line of the guest kernel's log (`rxvmm.klog=1`), with its `<priority>` prefix. */
  | { kind: 'klog'; line: string }
  | { kind: 'begin'; begin: StepBegin }
  | { kind: 'result'; result: StepResult }
  | { kind: 'error'; error: string }
  | { kind: 'done'; status: number };

const TAG = /RXVMM-(DEVICE|QUEUES|FEATURES|KLOG|BEGIN|RESULT|ERROR|DONE) (\{.*\})\s*$/;

/** One console line to an event, or null when the line is not the guest's. Malformed JSON is an error event. */
export function parseConsoleLine(line: string): ConsoleEvent | null {
  const m = TAG.exec(line);
  if (!m) return null;
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(m[2]!) as Record<string, unknown>;
  } catch {
    return { kind: 'error', error: `unparsable console line: ${line}` };
  }
  switch (m[1]) {
    case 'DEVICE':
      return {
        kind: 'device',
        path: String(body.path),
        bytes: Number(body.bytes),
        readOnly: body.readOnly === true,
      };
    case 'QUEUES':
      return { kind: 'queues', count: Number(body.count) };
    case 'FEATURES':
      return { kind: 'features', bits: String(body.bits) };
    case 'KLOG':
      return { kind: 'klog', line: String(body.line) };
    case 'BEGIN':
      return {
        kind: 'begin',
        begin: { op: String(body.op), step: String(body.step), dev: String(body.dev) },
      };
    case 'RESULT':
      return { kind: 'result', result: body as unknown as StepResult };
    case 'ERROR':
      return { kind: 'error', error: String(body.error) };
    default:
      return { kind: 'done', status: Number(body.status) };
  }
}

/** Splits a byte stream into lines (the console arrives in arbitrary chunks, with \r\n endings). */
export class LineSplitter {
  #rest = '';
  push(chunk: string): string[] {
    const text = this.#rest + chunk;
    const lines = text.split('\n');
    this.#rest = lines.pop() ?? '';
    return lines.map((l) => l.replace(/\r+$/, ''));
  }
  flush(): string[] {
    const rest = this.#rest;
    this.#rest = '';
    return rest ? [rest] : [];
  }
}
