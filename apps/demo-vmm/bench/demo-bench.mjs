#!/usr/bin/env node
// The seed's comparison, on real KVM, in one run: rxvmm-demo with ioeventfd + irqfd against
// rxvmm-demo with doorbells exiting to the VMM and completions injected with KVM_IRQ_LINE
// (µs and exits per request, and the ratio), the VMM's start-up time and peak RSS, plus the C
// reference (bench/doorbell.c, compiled here): one doorbell write exiting to userspace vs absorbed
// by an ioeventfd.
//
// Start-up is process start → the guest's first instruction (its HELLO exit), against `node -e 0`
// (process start → exit) measured in the same run: a `node -e 0` before every demo run, both timed
// from this process's spawn call on one clock (the demo reports when it started,
// `processStartMs`, and when HELLO came, `startupMs` after that). rxvmm-demo runs as installed:
// the package's bin (dist/bundle/cli.cjs). Each figure also goes to `pnpm bench`'s record.
// Usage: pnpm bench [-- --requests N --block-size B --runs R]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { figure, recordFigures } from '../../../bench/figures.mjs';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const cli = here(`../${JSON.parse(readFileSync(here('../package.json'), 'utf8')).bin['rxvmm-demo']}`);
/** Wall clock in ms since the epoch, as the demo's processStartMs and HELLO stamp are. */
const wallMs = () => performance.timeOrigin + performance.now();
const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '512' },
    'block-size': { type: 'string', default: '512' },
    runs: { type: 'string', default: '5' },
  },
});
const requests = Number(values.requests);
const blockSize = Number(values['block-size']);
const runs = Number(values.runs);

const access = spawnSync('test', ['-w', '/dev/kvm']);
if (access.status !== 0) {
  console.log('rxvmm-demo bench: /dev/kvm is not usable here; the comparison needs real KVM. Skipped.');
  process.exit(0);
}

// C reference, compiled in this run.
mkdirSync(here('../build/bench'), { recursive: true });
const cBin = here('../build/bench/doorbell');
execFileSync('cc', ['-O2', '-Wall', '-o', cBin, here('./doorbell.c')]);
const c = JSON.parse(execFileSync(cBin, ['20000'], { encoding: 'utf8' }));

/** `node -e 0`, spawn to exit: the yardstick the start-up is held to. */
function nodeStartup() {
  const t0 = wallMs();
  spawnSync(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  return wallMs() - t0;
}

function demo(flags) {
  const spawnedAt = wallMs();
  const r = spawnSync(
    process.execPath,
    [
      cli,
      '--backend',
      'kvm',
      '--requests',
      String(requests),
      '--block-size',
      String(blockSize),
      '--json',
      ...flags,
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`rxvmm-demo ${flags.join(' ')} failed (${r.status}):\n${r.stderr}`);
  const report = JSON.parse(r.stdout);
  // Process start (our spawn call) → HELLO, on the clock the demo stamps with.
  report.fromSpawnMs = report.processStartMs + report.startupMs - spawnedAt;
  // ... → the guest's first device access (the guest's start, before it, overlaps the vCPU worker's boot).
  report.deviceFromSpawnMs = report.processStartMs + report.firstDeviceAccessMs - spawnedAt;
  return report;
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

const configs = [
  { name: 'ioeventfd + irqfd', flags: [] },
  { name: 'exits + KVM_IRQ_LINE', flags: ['--no-ioeventfd', '--no-irqfd'] },
  { name: 'no ioeventfd, irqfd', flags: ['--no-ioeventfd'] },
  { name: 'ioeventfd, KVM_IRQ_LINE', flags: ['--no-irqfd'] },
];
const results = new Map(configs.map((k) => [k.name, []]));
const nodeMs = [];
spawnSync(process.execPath, ['-e', '0']); // page cache warm for both
demo([]);
// Interleaved so that load changes on a shared machine hit every configuration alike, and each
// demo run has its `node -e 0` right before it.
for (let i = 0; i < runs; i++)
  for (const k of configs) {
    nodeMs.push(nodeStartup());
    results.get(k.name).push(demo(k.flags));
  }

const rows = configs.map((k) => {
  const rs = results.get(k.name);
  return {
    name: k.name,
    us: median(rs.map((r) => r.usPerRequest)),
    exits: median(rs.map((r) => r.exitsPerRequest)),
    mmio: median(rs.map((r) => r.exits.mmio / r.verified)),
    startup: median(rs.map((r) => r.startupMs)),
    rss: Math.max(...rs.map((r) => r.peakRssMiB)),
    guestRam: rs[0].guestRamMiB,
  };
});
const fast = rows[0];
const slow = rows[1];
const f = (v, d = 1) => v.toFixed(d);

console.log(
  `rxvmm-demo on /dev/kvm: ${requests} requests (write + read back + verify) of ${blockSize} B, median of ${runs} runs`,
);
console.log('');
console.log('| device path | µs/request | exits/request | MMIO exits/request | start-up ms | peak RSS MiB |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows)
  console.log(
    `| ${r.name} | ${f(r.us)} | ${f(r.exits, 2)} | ${f(r.mmio, 2)} | ${f(r.startup)} | ${f(r.rss)} |`,
  );
console.log('');
console.log(
  `ratio (exits + KVM_IRQ_LINE) / (ioeventfd + irqfd): ${f(slow.us / fast.us, 2)}x µs/request, ${f(slow.exits / fast.exits, 2)}x exits/request ` +
    `(${f(slow.exits - fast.exits, 2)} more exits per request: the two doorbells)`,
);
console.log(
  `saved per request by ioeventfd + irqfd: ${f(slow.us - fast.us)} µs for ${f(slow.exits - fast.exits, 2)} exits ` +
    `(${f((slow.us - fast.us) / Math.max(slow.exits - fast.exits, 1))} µs per avoided exit)`,
);
console.log('');
console.log(
  `C reference (bench/doorbell.c, same run, ${c.writes} writes): doorbell write exiting to userspace ${f(c.exitWriteUs, 2)} µs, ` +
    `absorbed by an ioeventfd ${f(c.ioeventfdWriteUs, 2)} µs (guest loop ${f(c.loopUs, 2)} µs subtracted): ratio ${f(c.exitWriteUs / c.ioeventfdWriteUs, 1)}x`,
);
const allRuns = configs.flatMap((k) => results.get(k.name));
// Paired in run order: demo run i came right after node -e 0 run i.
const startups = [];
const deviceAccesses = [];
for (let i = 0; i < runs; i++)
  for (const k of configs) {
    startups.push(results.get(k.name)[i].fromSpawnMs);
    deviceAccesses.push(results.get(k.name)[i].deviceFromSpawnMs);
  }
const startup = median(startups);
const yardstick = median(nodeMs);
console.log(
  `start-up (process start → guest's first instruction, HELLO): ${f(startup)} ms [${f(Math.min(...startups))}-${f(Math.max(...startups))}], ` +
    `node -e 0 ${f(yardstick)} ms [${f(Math.min(...nodeMs))}-${f(Math.max(...nodeMs))}]: ratio ${f(startup / yardstick, 2)}x (target <= 1.5x), ${startups.length} runs each`,
);
console.log(
  `first device access (process start → the guest's first register access): ${f(median(deviceAccesses))} ms ` +
    `[${f(Math.min(...deviceAccesses))}-${f(Math.max(...deviceAccesses))}]: ratio ${f(median(deviceAccesses) / yardstick, 2)}x of node -e 0`,
);
const rss = Math.max(...rows.map((r) => r.rss));
console.log(
  `peak RSS: ${f(rss)} MiB, guest RAM ${fast.guestRam} MiB (at most that much of it touched): ` +
    `beyond guest RAM ${f(rss - fast.guestRam)}..${f(rss)} MiB (target < 100 MiB)`,
);

const byConfig = (name, pick) => results.get(name).map(pick);
recordFigures('demo-vmm', [
  figure({
    figure: 'startup',
    what: '`rxvmm-demo` start-up: process start → guest’s first instruction',
    unit: 'ms',
    better: 'lower',
    values: startups,
    reference: '`node -e 0`, process start → exit',
    referenceValues: nodeMs,
    target: 'ratio <= 1.5',
  }),
  figure({
    figure: 'first-device-access',
    what: '`rxvmm-demo` process start → the guest’s first device access (its start done)',
    unit: 'ms',
    better: 'lower',
    values: deviceAccesses,
    reference: '`node -e 0`, process start → exit',
    referenceValues: nodeMs,
  }),
  figure({
    figure: 'peak-rss',
    what: '`rxvmm-demo` peak RSS, whole process (its 16 MiB of guest RAM included)',
    unit: 'MiB',
    better: 'lower',
    values: allRuns.map((r) => r.peakRssMiB),
    target: '< 100 MiB beyond guest RAM',
  }),
  figure({
    figure: 'exits-per-request',
    what: '`rxvmm-demo` exits per request, ioeventfd + irqfd (reference: doorbell exits + KVM_IRQ_LINE)',
    unit: 'exits',
    better: 'lower',
    values: byConfig(fast.name, (r) => r.exitsPerRequest),
    reference: 'exits + KVM_IRQ_LINE',
    referenceValues: byConfig(slow.name, (r) => r.exitsPerRequest),
  }),
  figure({
    figure: 'us-per-request',
    what: `\`rxvmm-demo\` µs per request (${blockSize} B write + read back), ioeventfd + irqfd`,
    unit: 'µs',
    better: 'lower',
    values: byConfig(fast.name, (r) => r.usPerRequest),
    reference: 'exits + KVM_IRQ_LINE',
    referenceValues: byConfig(slow.name, (r) => r.usPerRequest),
  }),
  figure({
    figure: 'c-doorbell',
    what: 'C: a doorbell write exiting to userspace (reference: absorbed by an ioeventfd)',
    unit: 'µs',
    better: 'lower',
    values: [c.exitWriteUs],
    reference: 'C, absorbed by an ioeventfd',
    referenceValues: [c.ioeventfdWriteUs],
  }),
]);
