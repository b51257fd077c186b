// RxJS's Observable, loaded at the first call (Node): the register file runs inside a VMM's vCPU
// worker, on the way to the guest's first instruction, where loading RxJS's CommonJS build costs
// 80–250 ms. A browser bundle has no `require` and holds RxJS anyway: package.json's "imports"
// (#observable) picks observable.browser.ts there.
import { createRequire } from 'node:module';
import type * as Rx from 'rxjs';

// RxJS resolves to its CommonJS build under Node for both import and require: the same module instance.
const require = createRequire(import.meta.url);

/** The Observable class (RxJS loaded now if it was not). */
export function observableClass(): typeof Rx.Observable {
  return (require('rxjs') as typeof Rx).Observable;
}
