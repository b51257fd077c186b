// observable.ts for a browser build (package.json "imports", condition "browser"): a static
// import, which the bundle resolves; no `node:module`.
import { Observable } from 'rxjs';

/** The Observable class. */
export function observableClass(): typeof Observable {
  return Observable;
}
