// Injected into each bundle by scripts/bundle.mjs (CommonJS output, where `__filename` is the
// bundle's path): the URL that every `import.meta.url` of the bundled modules becomes.
import { pathToFileURL } from 'node:url';

export const __bundleUrl = pathToFileURL(__filename).href;
