#!/usr/bin/env node
// rxvmm-vhost-blk entry point: runs the back-end until SIGINT/SIGTERM.
import { run } from './run.js';

const result = await run(process.argv.slice(2));
if (typeof result === 'number') {
  process.exitCode = result;
} else {
  const stop = (why: string): void => {
    result.shutdown(why.startsWith('SIG') ? `received ${why}` : why).then(
      () => process.exit(0),
      (error: Error) => {
        process.stderr.write(`rxvmm-vhost-blk: shutdown failed: ${error.message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // An inherited connected socket serves one frontend: when it has gone there is nothing left to do.
  void result.finished.then(() => stop('the frontend connection ended'));
}
