#!/usr/bin/env node
// The CLI is compiled by `npm install` (the `prepare` script); this shim only loads it.
import { main } from '../dist/cli.js';

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
