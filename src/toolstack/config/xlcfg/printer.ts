/**
 * Prints xl.cfg values and settings in a form the parser (and xl) reads back to the same
 * values: strings in double quotes with C escapes, numbers as written, lists on one line.
 */
import { XenpvError } from '../../../base/index.js';
import { CONFIG_ERROR_CODE } from '../config-error.js';
import type { XlConfig, XlValue } from './parser.js';

const NAMED_ESCAPES: Readonly<Record<string, string>> = {
  '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t',
  '\x07': '\\a', '\b': '\\b', '\f': '\\f', '\v': '\\v',
};

const IDENT_FULL = /^[a-z][._0-9a-z]*$/;
const NUMBER_FULL = /^[0-9][0-9a-fx]*$/;

export function quoteXlString(s: string): string {
  let out = '"';
  for (const c of s) {
    const named = NAMED_ESCAPES[c];
    if (named !== undefined) out += named;
    else if (c < ' ' || c === '\x7f') out += `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
    else out += c;
  }
  return out + '"';
}

export function printXlValue(v: XlValue): string {
  switch (v.kind) {
    case 'string': return quoteXlString(v.value);
    case 'number':
      if (!NUMBER_FULL.test(v.text)) {
        throw new XenpvError(CONFIG_ERROR_CODE, `cannot print \`${v.text}' as an xl.cfg number`);
      }
      return v.text;
    case 'list':
      return v.items.length === 0 ? '[ ]' : `[ ${v.items.map(printXlValue).join(', ')} ]`;
  }
}

export function printXlSetting(key: string, v: XlValue): string {
  if (!IDENT_FULL.test(key)) {
    throw new XenpvError(CONFIG_ERROR_CODE, `cannot print \`${key}' as an xl.cfg setting name`);
  }
  return `${key} = ${printXlValue(v)}`;
}

/** The whole configuration, one setting per line, in order of first definition. */
export function printXlConfig(config: XlConfig): string {
  let out = '';
  for (const s of config.settings.values()) out += printXlSetting(s.key, s.value) + '\n';
  return out;
}
