// Bundles highlight.js (from npm, never a CDN) with the languages answers
// use most into public/vendor/highlight.<content hash>.js, an ES module the
// page imports the first time a finished code block needs colour. The hash
// in the name lets the server tell browsers to keep it a year.
import { build } from 'esbuild';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const out = join(root, 'public', 'vendor');

// highlight.js modules, each registered under its own name with its
// aliases (py, js, ts, sh, html…), except `shell`: highlight.js's grammar of
// that name is a terminal session's, which colours only lines after a `$`
// prompt, and models write ```shell over plain commands. It answers to
// `console` (its own alias); `shell` is bash.
const LANGUAGES = [
  'rust', 'python', 'javascript', 'typescript', 'json', 'bash', 'xml', 'css',
  'sql', 'go', 'c', 'cpp', 'java', 'yaml',
];

const entry = `
import hljs from 'highlight.js/lib/core';
${LANGUAGES.map((name, i) => `import l${i} from 'highlight.js/lib/languages/${name}';`).join('\n')}
${LANGUAGES.map((name, i) => `hljs.registerLanguage('${name}', l${i});`).join('\n')}
import session from 'highlight.js/lib/languages/shell';
hljs.registerLanguage('console', session);
hljs.registerAliases(['shell'], { languageName: 'bash' });

// highlight.js's own CSS class for a scope ("title.function" → "hljs-title function_").
function scopeClass(scope) {
  if (scope.startsWith('language:')) return scope.replace('language:', 'language-');
  const [first, ...rest] = scope.split('.');
  return ['hljs-' + first, ...rest.map((piece, i) => piece + '_'.repeat(i + 1))].join(' ');
}

/** Builds highlight.js's token tree as DOM nodes: no HTML string, ever. */
function domBuilder(root) {
  const open = [root];
  return {
    addText(text) { open[open.length - 1].appendChild(document.createTextNode(text)); },
    openNode(node) {
      if (!node.scope) { open.push(open[open.length - 1]); return; }
      const span = document.createElement('span');
      span.className = scopeClass(node.scope);
      open[open.length - 1].appendChild(span);
      open.push(span);
    },
    closeNode() { open.pop(); },
  };
}

/** Colours the text of a <code> element; false for a language it lacks. */
export function highlight(code, language) {
  if (!language || !hljs.getLanguage(language)) return false;
  const result = hljs.highlight(code.textContent, { language, ignoreIllegals: true });
  const nodes = document.createDocumentFragment();
  result._emitter.walk(domBuilder(nodes));
  code.replaceChildren(nodes);
  code.classList.add('hljs');
  return true;
}
`;

mkdirSync(out, { recursive: true });
for (const file of readdirSync(out)) {
  if (file.startsWith('highlight.')) rmSync(join(out, file));
}
await build({
  stdin: { contents: entry, resolveDir: here, loader: 'js' },
  bundle: true,
  format: 'esm',
  minify: true,
  legalComments: 'none',
  target: 'es2020',
  outdir: out,
  entryNames: 'highlight.[hash]',
  logLevel: 'warning',
});
console.log(`highlighter: ${readdirSync(out).filter((f) => f.startsWith('highlight.')).join(', ')}`);
