/**
 * Text from the disk (file names, paths, a parser's excerpt) as it may be printed in a line of output: control
 * characters escaped JSON-style (`\n`, `\t`, `\u001b`), so a name with a newline cannot split one line per
 * difference or per problem in two, and an escape sequence in a name cannot drive the terminal. Everything
 * else is left as it is (a backslash too: the result is for people, and paths keep their look).
 * @example printable('two\nlines.png') // 'two\\nlines.png'
 */
export function printable(text: string): string {
  return CONTROL.test(text) ? text.replace(CONTROL_ALL, escapeChar) : text;
}

// C0, DEL, C1, and the two line separators JavaScript and some terminals break lines at.
const CONTROL = /[\0-\x1f\x7f-\x9f\u2028\u2029]/;
const CONTROL_ALL = new RegExp(CONTROL.source, 'g');

function escapeChar(char: string): string {
  const json = JSON.stringify(char).slice(1, -1);
  return json.length > 1 ? json : `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
}
