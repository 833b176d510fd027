#!/usr/bin/env node
// The CLI is compiled by `npm install` (the `prepare` script); this shim only loads it.
import { main } from '../dist/cli.js';

let settled = false;
// Node exits 0 when its event loop empties, even with main still awaiting: a wait nothing can end must not pass
// for a finished sweep in a script's `&&` chain.
process.on('beforeExit', () => {
  if (settled) return;
  process.stderr.write('parasweep: internal error: the run stopped before it finished (a wait that nothing ends)\n');
  process.exitCode = 1;
  settled = true;
});

main(process.argv.slice(2)).then((code) => {
  settled = true;
  process.exitCode = code;
});
