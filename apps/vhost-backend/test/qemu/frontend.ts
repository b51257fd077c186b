// Runs a vhost-user frontend command (e.g. `rxvmm-demo --vhost-user SOCKET`) against a back-end
// started here on a fresh socket, with a timeout; returns both sides' output for assertions.
import { spawn } from 'node:child_process';
import { type Backend, type BackendKind, startBackend } from './backends.js';

export interface FrontendRun {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** The back-end's output, and how it ended after SIGTERM (a clean shutdown is code 0). */
  backendOutput: string;
  backendExit: { code: number | null; signal: NodeJS.Signals | null };
}

export interface FrontendOptions {
  kind: BackendKind;
  disk: string;
  socket: string;
  /** argv of the frontend; the string SOCKET in it is replaced by the socket path. */
  command: readonly string[];
  timeoutMs?: number;
  readOnly?: boolean;
}

export function runCommand(
  argv: readonly string[],
  timeoutMs: number,
): Promise<Pick<FrontendRun, 'exitCode' | 'signal' | 'stdout' | 'stderr' | 'timedOut'>> {
  const [command, ...args] = argv;
  if (!command) throw new Error('empty command');
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  return new Promise((resolve) => {
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({
        exitCode: -1,
        signal: null,
        stdout,
        stderr: `${stderr}spawn failed: ${err.message}\n`,
        timedOut,
      });
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      resolve({ exitCode, signal, stdout, stderr, timedOut });
    });
  });
}

export async function runFrontendAgainst(o: FrontendOptions): Promise<FrontendRun> {
  const backend: Backend = await startBackend(o.kind, {
    disk: o.disk,
    socket: o.socket,
    readOnly: o.readOnly,
  });
  try {
    const run = await runCommand(
      o.command.map((a) => (a === 'SOCKET' ? o.socket : a)),
      o.timeoutMs ?? 60_000,
    );
    const backendExit = await backend.stop();
    return { ...run, backendOutput: backend.output(), backendExit };
  } catch (err) {
    await backend.stop();
    throw err;
  }
}
