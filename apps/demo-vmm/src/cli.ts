#!/usr/bin/env node
/**
 * rxvmm-demo (see main.ts). The vCPU worker starts first (early.ts); the package's bin, a CommonJS
 * bundle (scripts/bundle.mjs), starts it before the rest of the CLI even loads.
 */
import { prepareEarly } from './early.js';
import { runCli } from './main.js';

const argv = process.argv.slice(2);
runCli(argv, prepareEarly(argv));
