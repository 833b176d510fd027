/**
 * `--where`: the stages live in ./where/ (lexer, parser, checker, CPU and WGSL emitters); this module is the
 * entry point the rest of the code imports.
 */
export * from './where/index.js';
