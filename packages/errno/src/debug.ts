/**
 * Opt-in diagnostics, one namespace per package, switched on like Node's
 * `util.debuglog`: `NODE_DEBUG=rxvmm:*` (or a comma-separated list of
 * namespaces, `*` matching anything). It imports nothing from Node, so the
 * browser-safe packages can log too: in a browser page the switch is
 * `localStorage.NODE_DEBUG`, read when the page loads the logger.
 */

/** A namespace's logger: a no-op unless the namespace is switched on. */
export interface DebugLog {
  (message: string, ...args: unknown[]): void;
  /** The namespace, e.g. `rxvmm:virtio-mmio`. */
  readonly namespace: string;
  /** Whether messages are printed (decided at the first call or read, then fixed, like debuglog). */
  readonly enabled: boolean;
}

interface Host {
  process?: { env?: Record<string, string | undefined>; pid?: number };
  localStorage?: { getItem(key: string): string | null };
}

/** The switch: `NODE_DEBUG` from the environment, else from the page's localStorage. */
function debugSetting(): string {
  const host = globalThis as Host;
  const fromEnv = host.process?.env?.NODE_DEBUG;
  if (fromEnv !== undefined) return fromEnv;
  try {
    return host.localStorage?.getItem('NODE_DEBUG') ?? '';
  } catch {
    return ''; // storage can be off limits (sandboxed frames, privacy settings)
  }
}

/** True when `namespace` matches the comma-separated, case-insensitive patterns in `setting`. */
export function debugEnabled(namespace: string, setting: string = debugSetting()): boolean {
  return setting
    .split(',')
    .map((pattern) => pattern.trim())
    .filter((pattern) => pattern !== '')
    .some((pattern) => {
      const source = pattern.replace(/[|\\{}()[\]^$+?.]/g, '\\$&').replace(/\*/g, '.*');
      return new RegExp(`^${source}$`, 'i').test(namespace);
    });
}

/**
 * The logger of `namespace`. Lines go to `console.error` (stderr in Node) as
 * `NAMESPACE pid: message`, the shape `util.debuglog` prints; `message` may
 * hold printf-style placeholders (`%s`, `%d`, `%o`) for `args`.
 */
export function debug(namespace: string): DebugLog {
  let enabled: boolean | undefined;
  const isEnabled = (): boolean => {
    enabled ??= debugEnabled(namespace);
    return enabled;
  };
  const prefix = (): string => {
    const pid = (globalThis as Host).process?.pid;
    return pid === undefined ? namespace.toUpperCase() : `${namespace.toUpperCase()} ${pid}:`;
  };
  const log = (message: string, ...args: unknown[]): void => {
    if (isEnabled()) console.error(`${prefix()} ${message}`, ...args);
  };
  return Object.defineProperties(log, {
    namespace: { value: namespace, enumerable: true },
    enabled: { get: isEnabled, enumerable: true },
  }) as DebugLog;
}
