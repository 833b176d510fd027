/** `--where`, stage 1: text to tokens. */
import { InputError } from '../../errors.js';
import { FIELD } from './types.js';

export type TokenKind = 'num' | 'ident' | 'str' | 'op' | 'kw' | 'end';

export interface Token {
  kind: TokenKind;
  /** Source text of the token (for strings, the quoted text; for keywords, lower-cased). */
  text: string;
  /** Number value or string contents. */
  value: number | string;
  /** 0-based offset in the source. */
  pos: number;
}

const KEYWORDS = new Set(['and', 'or', 'not']);
const TWO_CHAR_OPS = new Set(['<=', '>=', '==', '!=', '&&', '||']);
const ONE_CHAR_OPS = new Set(['<', '>', '!', '(', ')', '*', '/', '+', '-']);

export function isDigit(ch: string): boolean {
  return ch >= '0' && ch <= '9';
}

function isIdentStart(ch: string): boolean {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch === '_';
}

function isIdentPart(ch: string): boolean {
  return isIdentStart(ch) || isDigit(ch);
}

/** One line: the reason, the 1-based position, and the text from there (a few words, no caret). */
export function failAt(text: string, pos: number, reason: string): never {
  if (pos >= text.length) {
    throw new InputError(FIELD, `${reason} at position ${pos + 1} (the end of the expression)`);
  }
  const rest = text.slice(pos).replace(/\s+/g, ' ');
  const snippet = rest.length > 20 ? `${rest.slice(0, 20)}...` : rest;
  throw new InputError(FIELD, `${reason} at position ${pos + 1} (near "${snippet}")`);
}

export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let p = 0;
  while (p < text.length) {
    const ch = text[p];
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') {
      p++;
      continue;
    }
    const start = p;
    if (isDigit(ch) || (ch === '.' && isDigit(text[p + 1] ?? ''))) {
      while (isDigit(text[p] ?? '')) p++;
      if (text[p] === '.') {
        p++;
        while (isDigit(text[p] ?? '')) p++;
      }
      if (text[p] === 'e' || text[p] === 'E') {
        let q = p + 1;
        if (text[q] === '+' || text[q] === '-') q++;
        if (!isDigit(text[q] ?? '')) failAt(text, p, 'expected digits in the exponent of a number');
        while (isDigit(text[q] ?? '')) q++;
        p = q;
      }
      if (isIdentPart(text[p] ?? '') || text[p] === '.') {
        failAt(text, start, `unexpected '${text[p]}' right after the number '${text.slice(start, p)}'`);
      }
      const source = text.slice(start, p);
      tokens.push({ kind: 'num', text: source, value: Number(source), pos: start });
      continue;
    }
    if (isIdentStart(ch)) {
      while (isIdentPart(text[p] ?? '')) p++;
      const word = text.slice(start, p);
      const lower = word.toLowerCase();
      if (KEYWORDS.has(lower)) tokens.push({ kind: 'kw', text: lower, value: lower, pos: start });
      else {
        let q = p;
        while (text[q] === ' ' || text[q] === '\t') q++;
        if (text[q] === '(') failAt(text, start, `function calls are not supported ('${word}(')`);
        tokens.push({ kind: 'ident', text: word, value: word, pos: start });
      }
      continue;
    }
    if (ch === "'" || ch === '"') {
      const end = text.indexOf(ch, p + 1);
      if (end < 0) failAt(text, start, `unterminated string (no closing ${ch})`);
      tokens.push({ kind: 'str', text: text.slice(start, end + 1), value: text.slice(start + 1, end), pos: start });
      p = end + 1;
      continue;
    }
    const two = text.slice(p, p + 2);
    if (TWO_CHAR_OPS.has(two)) {
      tokens.push({ kind: 'op', text: two, value: two, pos: start });
      p += 2;
      continue;
    }
    if (ch === '=') failAt(text, start, "use '==' to compare, not '='");
    if (ch === '&' || ch === '|') failAt(text, start, `unexpected '${ch}' (write '${ch}${ch}', or '${ch === '&' ? 'and' : 'or'}')`);
    if (ONE_CHAR_OPS.has(ch)) {
      tokens.push({ kind: 'op', text: ch, value: ch, pos: start });
      p++;
      continue;
    }
    failAt(text, start, `unexpected character '${ch}'`);
  }
  tokens.push({ kind: 'end', text: '', value: '', pos: text.length });
  return tokens;
}