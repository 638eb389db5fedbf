// Answers rendered as Markdown while they stream: blocks appear as what
// they are, finished blocks are never rebuilt, nothing in an answer runs.
import { expect, test } from '@playwright/test';
import { resetFake, setBehavior } from './fake';
import { answerText, lastAnswer, openChat, send, waitForAnswer } from './chat-page';

test.beforeEach(resetFake);

const ANSWER = [
  'Here is a comparison:',
  '',
  '| Language | Typing |',
  '|----------|--------|',
  '| Rust | static |',
  '| Python | dynamic |',
  '',
  'Things to remember:',
  '',
  '- ownership',
  '- borrowing',
  '- lifetimes',
  '',
  '```rust',
  'fn main() {',
  '    println!("hi");',
  '}',
  '```',
  '',
  'That is **all** for now, with `code` inline.',
].join('\n');

const CODE = 'fn main() {\n    println!("hi");\n}\n';

test('a streamed answer renders its table, list and code block while it streams', async ({ page }) => {
  await setBehavior({ reply: ANSWER, token_delay_ms: 40 });
  await openChat(page);
  await send(page, 'Compare two languages');

  const answer = lastAnswer(page);
  const busy = page.locator('[data-testid="message-assistant"][aria-busy="true"]');
  // Each kind shows up as itself before the answer is over.
  await expect(busy.locator('table tbody tr')).toHaveCount(2);
  await expect(busy.locator('ul > li')).toHaveCount(3);
  await expect(busy.getByTestId('code-block')).toHaveCount(1);
  await waitForAnswer(page);
  await expect(answer.locator('pre code .hljs-keyword').first()).toHaveText('fn');
  await expect(answer.locator('pre code .hljs-string')).toHaveText('"hi"');

  await expect(answer.locator('table th')).toHaveText(['Language', 'Typing']);
  await expect(answer.locator('ul > li')).toHaveText(['ownership', 'borrowing', 'lifetimes']);
  await expect(answer.getByTestId('code-language')).toHaveText('rust');
  await expect(answer.locator('pre code')).toHaveText(CODE);
  await expect(answer.locator('p strong')).toHaveText('all');
  await expect(answer.locator('p > code')).toHaveText('code');
  // Markdown syntax is not left on screen.
  await expect(answerText(page)).not.toContainText('|---');
  await expect(answerText(page)).not.toContainText('```');
});

// A block in each language the highlighter carries, each followed by a line
// of prose but the last, followed only by a long sentence: a block is final
// once two more blocks follow, so the last one is not until the answer ends.
const SNIPPETS: [string, string][] = [
  ['python', 'def add(a, b):\n    return a + b'],
  ['javascript', 'const total = items.length;'],
  ['typescript', 'let count: number = 2;'],
  ['json', '{"name": "app", "port": 8080}'],
  ['shell', 'echo "hello" | grep hel'],
  ['html', '<p class="note">hi</p>'],
  ['css', 'p { color: red; }'],
  ['sql', 'SELECT id FROM users WHERE id = 1;'],
  ['go', 'func main() {}'],
  ['c', 'int main(void) { return 0; }'],
  ['cpp', 'int main() { return 0; }'],
  ['java', 'public class App {}'],
  ['yaml', 'name: app'],
];
const fence = ([language, code]: [string, string]) => ['```' + language, code, '```', ''].join('\n');
const POLYGLOT =
  SNIPPETS.slice(0, -1)
    .map((snippet) => `${fence(snippet)}\nThat was ${snippet[0]}.\n\n`)
    .join('') +
  fence(SNIPPETS[SNIPPETS.length - 1]) +
  '\nAnd that is every language, one block after another, with this closing sentence streaming slowly, word by ' +
  'word, long enough that the last code block above it stays a block that can still change while the answer ' +
  'goes on for a good while longer than any check of it takes, so nothing here races the end of the answer.';

test('code in each common language is coloured once its block is finished, not token by token', async ({ page }) => {
  await setBehavior({ reply: POLYGLOT, token_delay_ms: 25 });
  await openChat(page);
  await send(page, 'Show me code');

  const busy = page.locator('[data-testid="message-assistant"][aria-busy="true"]');
  const colour = '[class^="hljs-"]';
  // The first block is final once two more follow: coloured while the answer streams.
  await expect(busy.locator('pre code').first().locator(colour).first()).toBeAttached();
  // The last one is followed by one paragraph until the end: still uncoloured,
  // though its fence closed long ago.
  await expect(busy.getByTestId('code-block')).toHaveCount(SNIPPETS.length);
  await expect(busy.getByText('closing sentence streaming')).toBeVisible();
  await expect(busy.locator('pre code').last().locator('span')).toHaveCount(0);

  await waitForAnswer(page);
  const answer = lastAnswer(page);
  for (const [index, [language]] of SNIPPETS.entries()) {
    await expect(answer.getByTestId('code-language').nth(index)).toHaveText(language);
    await expect(answer.locator('pre code').nth(index).locator(colour).first(), language).toBeAttached();
  }
});

test('a finished block keeps its DOM nodes while later tokens arrive', async ({ page }) => {
  const paragraphs = Array.from({ length: 12 }, (_, i) => `Paragraph number ${i + 1} of the answer.`);
  await setBehavior({ reply: paragraphs.join('\n\n'), token_delay_ms: 25 });
  const vendored: string[] = [];
  page.on('request', (request) => {
    if (request.url().includes('/vendor/')) vendored.push(request.url());
  });
  await openChat(page);
  await send(page, 'Write twelve paragraphs');

  const first = answerText(page).locator('p').first();
  // Once two more blocks follow it, the first paragraph is final: mark the
  // node itself, then check the very same node is there at the end.
  await expect.poll(() => answerText(page).locator('p').count()).toBeGreaterThanOrEqual(4);
  await expect(lastAnswer(page)).toHaveAttribute('aria-busy', 'true');
  await first.evaluate((node) => ((node as any).__marked = true));
  await waitForAnswer(page);

  await expect(answerText(page).locator('p')).toHaveCount(12);
  expect(await first.evaluate((node) => (node as any).__marked === true && node.isConnected)).toBe(true);
  await expect(first).toHaveText('Paragraph number 1 of the answer.');
  // No code, so the highlighter was never loaded.
  expect(vendored).toEqual([]);
});

test('an answer streaming faster than frames is rendered at most once a frame', async ({ page }) => {
  // A token every 2 ms: several arrive between two frames.
  const words = Array.from({ length: 600 }, (_, i) => `word${i}`).join(' ');
  await setBehavior({ reply: words, token_delay_ms: 2 });
  await openChat(page);
  await send(page, 'Talk fast');
  const text = answerText(page);
  await expect(text).toContainText('word5 ');

  // Each batch of DOM changes in the answer, stamped with the frame it fell
  // in (a frame counter ticks first in every frame).
  const stamps = await text.evaluate(
    (element) =>
      new Promise<number[]>((resolve) => {
        let frame = 0;
        let counting = true;
        const tick = () => {
          frame += 1;
          if (counting) requestAnimationFrame(tick);
        };
        requestAnimationFrame(tick);
        const seen: number[] = [];
        const observer = new MutationObserver(() => seen.push(frame));
        observer.observe(element, { childList: true, subtree: true, characterData: true });
        setTimeout(() => {
          counting = false;
          observer.disconnect();
          resolve(seen);
        }, 400);
      }),
  );
  // It rendered while observed: more than a few frames' worth.
  expect(stamps.length).toBeGreaterThan(5);
  expect(stamps.length, `frames of the renders: ${stamps}`).toBe(new Set(stamps).size);
});

test('Copy on a code block puts the code on the clipboard', async ({ context, page }) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  await setBehavior({ reply: ANSWER });
  await openChat(page);
  await send(page, 'Show me code');
  await waitForAnswer(page);

  await lastAnswer(page).getByTestId('copy-code-button').click();
  await expect.poll(() => page.evaluate(() => navigator.clipboard.readText())).toBe(CODE);
});

test('links are safe and images are never fetched', async ({ page }) => {
  const reply = [
    'Read [the docs](https://example.com/docs) or see https://example.org/page.',
    '',
    '[click me](javascript:window.__xss=1) ![pixel](https://tracker.example/p.gif)',
    '',
    '<img src=x onerror="window.__xss=2">',
    '',
    '<script>window.__xss=3</script>',
  ].join('\n');
  const fetched: string[] = [];
  await page.route('https://tracker.example/**', (route) => {
    fetched.push(route.request().url());
    return route.abort();
  });
  await setBehavior({ reply });
  await openChat(page);
  await send(page, 'Say something risky');
  await waitForAnswer(page);

  const links = answerText(page).locator('a');
  await expect(links).toHaveCount(3);
  await expect(links.nth(0)).toHaveAttribute('href', 'https://example.com/docs');
  await expect(links.nth(0)).toHaveAttribute('target', '_blank');
  await expect(links.nth(0)).toHaveAttribute('rel', 'noopener noreferrer');
  await expect(links.nth(1)).toHaveAttribute('href', 'https://example.org/page');
  // The image is a link to it, showing its alt text.
  await expect(links.nth(2)).toHaveAttribute('href', 'https://tracker.example/p.gif');
  await expect(links.nth(2)).toHaveText('pixel');
  await expect(answerText(page)).toContainText('click me');
  await expect(answerText(page)).toContainText('<img src=x onerror="window.__xss=2">');
  await expect(answerText(page)).toContainText('<script>window.__xss=3</script>');
  await expect(page.locator('.messages img, .messages script, .messages a[href^="javascript"]')).toHaveCount(0);
  await answerText(page).getByText('click me').click();
  expect(await page.evaluate(() => (window as any).__xss)).toBeUndefined();
  expect(fetched).toEqual([]);
});

test('a reloaded conversation shows its answer rendered by the server', async ({ page }) => {
  await setBehavior({ reply: ANSWER });
  await openChat(page);
  await send(page, 'Compare two languages');
  await waitForAnswer(page);
  await expect(page).toHaveURL(/\/c\//);

  // The first HTML, before any script runs, already holds the Markdown.
  const html = await (await page.request.get(page.url())).text();
  expect(html).toContain('<th>Language');
  expect(html).toContain('<li>ownership');
  expect(html).toContain('data-testid="code-block"');

  await page.reload();
  await openChat(page, page.url());
  await expect(lastAnswer(page).locator('table tbody tr')).toHaveCount(2);
  await expect(lastAnswer(page).getByTestId('code-block')).toHaveCount(1);
  // Hydration adopted the server's nodes: one table, not two.
  await expect(lastAnswer(page).locator('table')).toHaveCount(1);
});

test('the page is live before the renderer arrives: server-rendered answers work, new ones show plain', async ({
  context,
  page,
}) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  await setBehavior({ reply: ANSWER });
  await openChat(page);
  await send(page, 'Compare two languages');
  await waitForAnswer(page);
  await expect(page).toHaveURL(/\/c\//);

  // Hold the renderer's WASM back: the page must not wait for it.
  let release = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  let requests = 0;
  await page.route(/\/pkg\/split_mount_live_answer_[^/]+\.wasm$/, async (route) => {
    requests += 1;
    await held;
    await route.continue();
  });
  await page.reload();
  await expect(page.locator('.chat[data-hydrated="true"]')).toBeVisible();
  await expect.poll(() => requests).toBe(1);
  await expect(page.locator('.chat')).not.toHaveAttribute('data-renderer', 'ready');

  // The server's answer, adopted as it came: coloured, and Copy works.
  const served = page.getByTestId('message-assistant').first();
  await expect(served.locator('table tbody tr')).toHaveCount(2);
  await expect(served.locator('pre code .hljs-keyword').first()).toHaveText('fn');
  await served.getByTestId('copy-code-button').click();
  await expect.poll(() => page.evaluate(() => navigator.clipboard.readText())).toBe(CODE);
  await served.locator('table').evaluate((node) => ((node as any).__served = true));

  // A new answer meanwhile: its text, plain, line breaks kept.
  const PLAIN = 'First line\n\n- one\n- two';
  await setBehavior({ reply: PLAIN });
  await send(page, 'Another');
  await waitForAnswer(page);
  expect(await answerText(page).evaluate((node) => node.textContent)).toBe(PLAIN);
  await expect(lastAnswer(page).locator('li')).toHaveCount(0);

  // The renderer arrives: the new answer becomes Markdown; the server's
  // answer is left as it was (the very same nodes).
  release();
  await expect(page.locator('.chat[data-renderer="ready"]')).toBeVisible();
  await expect(lastAnswer(page).locator('li')).toHaveText(['one', 'two']);
  await expect(answerText(page).locator('p')).toHaveText('First line');
  expect(await served.locator('table').evaluate((node) => (node as any).__served === true)).toBe(true);
  expect(requests).toBe(1);
});

