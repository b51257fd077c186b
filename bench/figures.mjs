// What a package benchmark hands to `pnpm bench` (scripts/bench.mjs): one row per figure, appended
// as a JSON line to the file named by BENCH_RECORD (nothing is written when it is unset, so every
// benchmark still runs on its own). The row format is described in bench/README.md.
import { appendFileSync } from 'node:fs';

/** The median (the mean of the middle two for an even count). */
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Rounds to `digits` significant digits: figures keep their precision whatever their size. */
const sig = (x, digits = 4) => (Number.isFinite(x) && x !== 0 ? Number(x.toPrecision(digits)) : x);

/**
 * One figure from its per-round values. `referenceValues[i]` is the reference measured next to
 * `values[i]` (same round), so each round has a ratio; `ratio` is median(values) / median(reference).
 * A figure without a reference (a count, a peak) leaves `reference` out.
 *
 * @param {object} f
 * @param {string} f.figure     stable key, unique within the benchmark (`split-1`, `mmio-exit`)
 * @param {string} f.what       what was measured, for tables (a short phrase)
 * @param {string} f.unit       `µs`, `ms`, `M/s`, `MiB/s`, `MiB`, `exits/request`, ...
 * @param {'lower'|'higher'} f.better
 * @param {number[]} f.values   rxvmm's figure, one per round
 * @param {string} [f.reference]        what the reference is (`C -O2`, `qemu-storage-daemon`)
 * @param {number[]} [f.referenceValues] the reference, one per round (paired with values)
 * @param {string} [f.target]   the target the figure is held to, as text (`ratio <= 1.5`)
 */
export function figure(f) {
  const row = {
    figure: f.figure,
    what: f.what,
    unit: f.unit,
    better: f.better,
    value: sig(median(f.values)),
    min: sig(Math.min(...f.values)),
    max: sig(Math.max(...f.values)),
    rounds: f.values.length,
  };
  if (f.reference !== undefined && f.referenceValues?.length) {
    const ref = f.referenceValues;
    const ratios = f.values.slice(0, ref.length).map((v, i) => v / ref[i]);
    Object.assign(row, {
      reference: f.reference,
      referenceValue: sig(median(ref)),
      referenceMin: sig(Math.min(...ref)),
      referenceMax: sig(Math.max(...ref)),
      ratio: sig(median(f.values) / median(ref), 3),
      ratioMin: sig(Math.min(...ratios), 3),
      ratioMax: sig(Math.max(...ratios), 3),
    });
  }
  if (f.target !== undefined) row.target = f.target;
  return row;
}

/** Appends `rows` (from {@link figure}) for benchmark `bench` to the run's record, when there is one. */
export function recordFigures(bench, rows) {
  const file = process.env.BENCH_RECORD;
  if (!file) return;
  appendFileSync(file, rows.map((r) => `${JSON.stringify({ bench, ...r })}\n`).join(''));
}
