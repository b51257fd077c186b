#!/usr/bin/env node
// The figures tables of the READMEs, generated from a committed `pnpm bench` record
// (bench/results/*.json, written by scripts/bench.mjs). A table lives between two markers:
//
//   <!-- bench-table record=bench/results/2026-12-05-abc1234.json figures=kvm-linux/mmio-exit,virtio-ring/* -->
//   ...generated: do not edit...
//   <!-- /bench-table -->
//
// `figures` lists `bench/figure` keys of the record in table order (`bench/*`: all of a bench's,
// in the record's order). The generated part is a Markdown table (what, rxvmm's median and range
// over the rounds, the reference's median, the ratio's median and range, the target) and a line
// naming the record, its commit, Node version, date, load average and yardstick.
//
//   node scripts/bench-tables.mjs                 regenerate every table from the record it names
//   node scripts/bench-tables.mjs --record FILE   point every table FILE has figures for at FILE,
//                                                 then regenerate (others keep their record)
//   node scripts/bench-tables.mjs --check         exit 1 if a table differs from its record
//
// scripts/check-docs.mjs runs the check (with the tests), and also fails on a figure stated in a
// README outside these tables (benchTableProblems below).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const OPEN = /<!-- bench-table record=(\S+) figures=(\S+) -->/;
const CLOSE = '<!-- /bench-table -->';

/** The READMEs that may hold tables or figures: the root's, every package's and app's, bench/'s. */
export function benchReadmes(root) {
  const out = ['README.md', 'bench/README.md'];
  for (const group of ['packages', 'apps']) {
    if (!existsSync(join(root, group))) continue;
    for (const name of readdirSync(join(root, group)).sort()) {
      for (const file of ['README.md', 'bench/README.md']) out.push(join(group, name, file));
    }
  }
  return out.filter((f) => existsSync(join(root, f)));
}

const fmt = (x) => {
  if (x === undefined || x === null || !Number.isFinite(x)) return '';
  const abs = Math.abs(x);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
};
const range = (min, max) => (min === max ? '' : ` [${fmt(min)}–${fmt(max)}]`);

/** The Markdown of one table: the record's rows for `keys`, in that order. */
export function renderTable(record, recordPath, keys) {
  const rows = [];
  for (const key of keys) {
    const [bench, name] = key.split('/');
    const matching = record.figures.filter((f) => f.bench === bench && (name === '*' || f.figure === name));
    if (matching.length === 0) throw new Error(`${recordPath} has no figure ${key}`);
    rows.push(...matching);
  }
  const cells = rows.map((f) => [
    `${f.what} (\`${f.bench}\`)`,
    `${fmt(f.value)} ${f.unit}${range(f.min, f.max)}`,
    f.reference === undefined ? '' : `${f.reference}: ${fmt(f.referenceValue)} ${f.unit}`,
    f.ratio === undefined ? '' : `${fmt(f.ratio)}x${range(f.ratioMin, f.ratioMax)}`,
    f.target ?? '',
  ]);
  const lines = markdownTable(
    ['what', 'rxvmm', 'reference', 'ratio', 'target'],
    [false, true, false, true, false],
    cells,
  );
  const y = record.yardstick;
  const load = (l) => l.map((v) => v.toFixed(2)).join(' ');
  const rounds = [...new Set(rows.map((f) => f.rounds))].sort((a, b) => a - b).join('/');
  lines.push(
    '',
    `Generated from [\`${recordPath}\`](https://github.com/rxvmm/rxvmm/blob/main/${recordPath}) ` +
      `by \`node scripts/bench-tables.mjs\`: commit ${record.commit.slice(0, 7)}${record.dirty ? ' (with uncommitted changes)' : ''}, ` +
      `Node ${record.node}, ${record.date.slice(0, 10)}, ${record.machine.cpus} CPUs, ` +
      `load average ${load(record.loadAverage.before)} before and ${load(record.loadAverage.after)} after; ` +
      `yardstick \`node -e 0\` ${fmt(y.value)} ms. Medians over ${rounds} rounds, [lowest–highest]; ` +
      'ratio = rxvmm / reference.',
  );
  return lines.join('\n');
}

/** A Markdown table padded as Biome formats one (so `pnpm format` leaves it as generated). */
function markdownTable(header, right, rows) {
  const width = (s) => [...s].length;
  const widths = header.map((h, c) => Math.max(3, width(h), ...rows.map((r) => width(r[c]))));
  const pad = (s, c) => {
    const fill = ' '.repeat(widths[c] - width(s));
    return right[c] ? fill + s : s + fill;
  };
  const line = (cells) => `| ${cells.map(pad).join(' | ')} |`;
  const rule = `| ${widths.map((w, c) => (right[c] ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w))).join(' | ')} |`;
  return [line(header), rule, ...rows.map(line)];
}

/** A table line with its padding dropped: what the check compares (formatting is not content). */
const unpadded = (line) => line.replace(/ {2,}/g, ' ').replace(/-{3,}/g, '---');

/** Every table of `text`: its position, record and keys. */
function tables(text) {
  const found = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = OPEN.exec(lines[i]);
    if (!m) continue;
    const end = lines.indexOf(CLOSE, i + 1);
    found.push({ start: i, end, record: m[1], keys: m[2].split(',') });
  }
  return { lines, found };
}

function readRecord(root, recordPath) {
  return JSON.parse(readFileSync(join(root, recordPath), 'utf8'));
}

/** `text` with every table regenerated (pointed at `recordOverride` first, when given). */
export function regenerate(root, text, recordOverride) {
  const { lines, found } = tables(text);
  for (const t of found.reverse()) {
    if (t.end < 0) throw new Error(`a bench-table at line ${t.start + 1} has no ${CLOSE}`);
    // --record FILE repoints the tables FILE can fill; one of figures it has none of (another
    // kind of record, e.g. a profile) keeps its own.
    const recordPath =
      recordOverride !== undefined && holdsAny(readRecord(root, recordOverride), t.keys)
        ? recordOverride
        : t.record;
    const body = renderTable(readRecord(root, recordPath), recordPath, t.keys);
    lines.splice(
      t.start,
      t.end - t.start + 1,
      `<!-- bench-table record=${recordPath} figures=${t.keys.join(',')} -->`,
      body,
      CLOSE,
    );
  }
  return lines.join('\n');
}

/** Whether `record` has a figure of any of `keys` (`bench/figure` or `bench/*`). */
function holdsAny(record, keys) {
  return keys.some((key) => {
    const [bench, name] = key.split('/');
    return record.figures.some((f) => f.bench === bench && (name === '*' || f.figure === name));
  });
}

/** Tracked by git (committed or staged): a table may only name a record others can read. */
function tracked(root, path) {
  try {
    execFileSync('git', ['ls-files', '--error-unmatch', path], { cwd: root, stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * A figure stated in prose: a number with a unit of time, rate or ratio (ns, µs, ms, M/s, MiB/s,
 * IOPS, s/GiB; a decimal with x), or a range of them. Sizes of things (16 MiB of RAM, 4 KiB
 * blocks), version numbers and counts are not matched.
 */
const FIGURE =
  /(?<![\w.])(\d+(?:\.\d+)?\s?[–-]\s?\d+(?:\.\d+)?\s?(?:ns|µs|us|ms|MiB\/s|M\/s|x)|\d+(?:\.\d+)?\s?(?:ns|µs|us|ms|M\/s|MiB\/s|GiB\/s|IOPS|s\/GiB)|\d+\.\d+\s?x)(?![\w/])/g;

/** Durations in READMEs that are constants of a design, not measurements (the whole phrase). */
const NOT_MEASURED = ['which browsers clamp to 4 ms', 'with back-off (1 → 16 ms)'];

/**
 * What check-docs reports: tables that differ from their record (or name a missing or untracked
 * one), and figures stated in a README outside the tables.
 */
export function benchTableProblems(root) {
  const problems = [];
  for (const readme of benchReadmes(root)) {
    const text = readFileSync(join(root, readme), 'utf8');
    const { lines, found } = tables(text);
    for (const t of found) {
      if (t.end < 0) {
        problems.push(`${readme}:${t.start + 1}: bench-table without ${CLOSE}`);
        continue;
      }
      if (!existsSync(join(root, t.record)) || !tracked(root, t.record)) {
        problems.push(`${readme}:${t.start + 1}: ${t.record} is not a committed record`);
        continue;
      }
      let body;
      try {
        body = renderTable(readRecord(root, t.record), t.record, t.keys);
      } catch (error) {
        problems.push(`${readme}:${t.start + 1}: ${error.message}`);
        continue;
      }
      if (
        lines
          .slice(t.start + 1, t.end)
          .map(unpadded)
          .join('\n') !== body.split('\n').map(unpadded).join('\n')
      )
        problems.push(
          `${readme}:${t.start + 1}: the table is not what ${t.record} gives (node scripts/bench-tables.mjs)`,
        );
    }
    const inTable = new Set(
      found.flatMap((t) => Array.from({ length: t.end - t.start + 1 }, (_, k) => t.start + k)),
    );
    lines.forEach((line, i) => {
      if (inTable.has(i)) return;
      for (const phrase of NOT_MEASURED) line = line.replace(phrase, '');
      // A Markdown table cell that is a decimal number alone (the unit in the header) counts too.
      const cells = line.trimStart().startsWith('|') ? line.matchAll(/\|\s*(\d+\.\d+)\s*(?=\|)/g) : [];
      for (const m of [...line.matchAll(FIGURE), ...cells])
        problems.push(
          `${readme}:${i + 1}: "${m[1] ?? m[0]}" is a figure outside a generated table (take it from a record: scripts/bench-tables.mjs)`,
        );
    });
  }
  return problems;
}

const isMain = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const args = process.argv.slice(2);
  if (args.includes('--check')) {
    const problems = benchTableProblems(root);
    for (const p of problems) console.log(p);
    console.log(problems.length === 0 ? 'bench tables: ok' : `bench tables: ${problems.length} problem(s)`);
    process.exit(problems.length === 0 ? 0 : 1);
  }
  const i = args.indexOf('--record');
  const override = i >= 0 ? relative(root, resolve(args[i + 1])) : undefined;
  for (const readme of benchReadmes(root)) {
    const text = readFileSync(join(root, readme), 'utf8');
    if (!OPEN.test(text)) continue;
    const next = regenerate(root, text, override);
    if (next !== text) {
      writeFileSync(join(root, readme), next);
      console.log(`bench tables: ${readme} regenerated`);
    }
  }
}
