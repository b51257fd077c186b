/**
 * node:util's parseArgs with the rough edges taken off for a CLI: every
 * error is one line (a `UsageError`), and a negative number after a numeric
 * option (`--requests -1`) is that option's value, so the range check
 * answers instead of parseArgs' multi-line "argument is ambiguous".
 */

/** A usage error: the CLI prints the message and a "Try --help" line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** `--flag -5` → `--flag=-5` for the flags in `numeric` (parseArgs would call `-5` ambiguous). */
export function attachNegativeNumbers(argv: readonly string[], numeric: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const next = argv[i + 1];
    if (numeric.has(arg) && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

/** parseArgs' error as one line a user can act on. */
function oneLine(error: Error & { code?: string }, program: string): string {
  const option = /Option '(-{1,2}[^' ]+)/.exec(error.message)?.[1];
  if (error.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    const arg = /'([^']*)'/.exec(error.message)?.[1] ?? '';
    return `unexpected argument '${arg}': ${program} takes no positional arguments`;
  }
  if (option && /argument is ambiguous/.test(error.message))
    return `${option} needs a value; for a value that starts with '-', write ${option}=VALUE`;
  if (option && /argument missing/.test(error.message)) return `${option} needs a value`;
  return (error.message.split('\n')[0] ?? '').replace(/\. .*$/, '').replace(/\.$/, '');
}

/**
 * Runs `parse` (the caller's strict `parseArgs`) on `argv` with negative numbers attached to the
 * `numeric` flags; its errors become one-line `UsageError`s.
 */
export function parseCommandLine<R>(
  argv: readonly string[],
  program: string,
  numeric: ReadonlySet<string>,
  parse: (args: string[]) => R,
): R {
  try {
    return parse(attachNegativeNumbers(argv, numeric));
  } catch (error) {
    throw new UsageError(oneLine(error as Error, program));
  }
}

/**
 * A whole number in [min, max] from `text` (signs allowed, so the range check names -1; huge values
 * are compared exactly, not as a rounded double). `message` words the error for this CLI.
 */
export function integerOption(
  text: string,
  min: number,
  max: number,
  message: (why: 'not-integer' | 'out-of-range') => string,
): number {
  const t = text.trim();
  if (!/^[+-]?\d+$/.test(t)) throw new UsageError(message('not-integer'));
  const value = BigInt(t);
  if (value < BigInt(min) || value > BigInt(max)) throw new UsageError(message('out-of-range'));
  return Number(value);
}

/** Whether the user asked for `flag` (before any `--`), for when parsing itself failed. */
export function flagGiven(argv: readonly string[], flag: string): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes(flag);
}
