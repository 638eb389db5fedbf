// The chat as a person uses it, against fake-ollama: streaming token by
// token, Stop, whole answers, the picker, multi-turn, failures, resuming
// after a dropped connection, and model output that must stay text.
import { expect, test } from '@playwright/test';
import { events, resetFake, setBehavior } from './fake';
import {
  answerText,
  lastAnswer,
  metric,
  openChat,
  recordAnswerTexts,
  recordedTexts,
  send,
  waitForAnswer,
} from './chat-page';
import { CuttableProxy } from './proxy';

test.beforeEach(resetFake);

test('tokens appear one by one as they stream', async ({ page }) => {
  await setBehavior({ tokens: 30, token_delay_ms: 50 });
  await openChat(page);
  await recordAnswerTexts(page);

  await send(page, 'Tell me something');
  await waitForAnswer(page);

  const texts = await recordedTexts(page);
  const finalText = texts[texts.length - 1].text;
  expect(finalText.split(' ')).toHaveLength(30);
  // Many distinct states, each growing from the one before.
  expect(texts.length).toBeGreaterThanOrEqual(20);
  for (let i = 1; i < texts.length; i++) {
    expect(texts[i].text.startsWith(texts[i - 1].text)).toBeTruthy();
    expect(texts[i].text.length).toBeGreaterThan(texts[i - 1].text.length);
  }
  // The first token was on screen long before the last was sent (1.5 s of tokens).
  expect(texts[texts.length - 1].at - texts[0].at).toBeGreaterThan(1000);
  const stats = lastAnswer(page).getByTestId('message-stats');
  await expect(stats).toContainText('30 tokens');
  await expect(stats).toContainText('tokens/s');
  await expect(stats).toContainText('first token');
});

test('the streaming answer is a polite live region, busy until it is whole', async ({ page }) => {
  await setBehavior({ tokens: 40, token_delay_ms: 30 });
  await openChat(page);

  await send(page, 'Tell me something');
  const answer = lastAnswer(page);
  await expect(answer).toHaveAttribute('aria-live', 'polite');
  // Screen readers wait for the whole answer instead of reading each token.
  await expect(answer).toHaveAttribute('aria-busy', 'true');
  await waitForAnswer(page);
  await expect(answer).not.toHaveAttribute('aria-busy', /.*/);
});

test('the history follows the answer, until the reader scrolls up', async ({ page }) => {
  await setBehavior({ tokens: 600, token_delay_ms: 15 });
  await page.setViewportSize({ width: 800, height: 500 });
  await openChat(page);
  const list = page.locator('.messages');
  const distanceToBottom = () => list.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight);
  const scrollable = () => list.evaluate((el) => el.scrollHeight - el.clientHeight);

  await send(page, 'Talk at length');
  await expect.poll(scrollable, { timeout: 10_000 }).toBeGreaterThan(200);
  // Following: the newest text stays in view as it grows.
  await expect.poll(distanceToBottom).toBeLessThanOrEqual(48);

  // The reader scrolls up to read: the page leaves them there.
  await list.evaluate((el) => el.scrollTo({ top: 0 }));
  const grownFrom = await scrollable();
  await expect.poll(scrollable).toBeGreaterThan(grownFrom + 100);
  expect(await list.evaluate((el) => el.scrollTop)).toBe(0);

  // Back at the bottom, it follows again.
  await list.evaluate((el) => el.scrollTo({ top: el.scrollHeight }));
  const rejoinedAt = await scrollable();
  await expect.poll(scrollable).toBeGreaterThan(rejoinedAt + 100);
  expect(await distanceToBottom()).toBeLessThanOrEqual(48);
  await page.getByTestId('send-button').click();
});

test('Stop keeps the partial answer and cancels the generation upstream', async ({ page }) => {
  await setBehavior({ tokens: 300, token_delay_ms: 40 });
  await openChat(page);
  const button = page.getByTestId('send-button');

  await send(page, 'Talk for a long time');
  await expect(button).toHaveText('Stop');
  await expect.poll(async () => (await answerText(page).textContent())!.split(' ').length).toBeGreaterThan(3);
  await button.click();
  const stoppedAt = Date.now();

  // The upstream saw the client go within a second of the click.
  await expect
    .poll(async () => (await events()).some((e) => e.kind === 'disconnected'), { timeout: 1000, intervals: [25] })
    .toBeTruthy();
  expect(Date.now() - stoppedAt).toBeLessThan(1000);
  await expect(button).toHaveText('Send');
  await expect(lastAnswer(page).getByTestId('message-note')).toHaveText('Stopped');
  const partial = (await answerText(page).textContent())!;
  expect(partial.length).toBeGreaterThan(0);
  await expect.poll(() => metric(page, 'llm_chat_generations_running')).toBe(0);
  await expect.poll(() => metric(page, 'llm_chat_active_streams')).toBe(0);
  // The partial text stays put: nothing more arrives.
  await page.waitForTimeout(300);
  await expect(answerText(page)).toHaveText(partial);
});

test('with streaming off the whole answer lands at once after a visible wait', async ({ page }) => {
  await setBehavior({ tokens: 20, token_delay_ms: 40 });
  await openChat(page);
  await page.getByTestId('stream-toggle').uncheck();
  await recordAnswerTexts(page);

  await send(page, 'All at once please');
  await expect(lastAnswer(page).getByTestId('message-note')).toHaveText('Waiting for the answer…');
  await waitForAnswer(page);

  const texts = await recordedTexts(page);
  expect(texts).toHaveLength(1);
  expect(texts[0].text.split(' ')).toHaveLength(20);
  await expect(lastAnswer(page).getByTestId('message-stats')).toContainText('answered in');
  const chats = (await events()).filter((e) => e.kind === 'request' && e.path === '/api/chat');
  expect(chats).toHaveLength(1);
  // The choice is remembered.
  await page.reload();
  await expect(page.locator('.chat[data-hydrated="true"]')).toBeVisible();
  await expect(page.getByTestId('stream-toggle')).not.toBeChecked();
});

test('the picker lists the models and the chosen one is the one asked', async ({ page }) => {
  await openChat(page);
  const picker = page.getByTestId('model-picker');
  await expect(picker.locator('option')).toHaveText([/llama3\.2:latest/, /qwen2\.5:0\.5b/, /smollm2:135m/, /gemma3:270m/]);

  await picker.selectOption('qwen2.5:0.5b');
  await send(page, 'Which model are you?');
  await waitForAnswer(page);

  const asked = (await events()).filter((e) => e.kind === 'request' && e.path === '/api/chat');
  expect(asked.map((e) => e.body.model)).toEqual(['qwen2.5:0.5b']);
  // Remembered across a reload.
  await openChat(page);
  await expect(picker).toHaveValue('qwen2.5:0.5b');
});

test('a second turn sends the first turn along', async ({ page }) => {
  await setBehavior({ reply: 'Paris is the capital.' });
  await openChat(page);

  await send(page, 'Capital of France?');
  await waitForAnswer(page);
  await send(page, 'And its population?');
  await waitForAnswer(page);

  const asked = (await events()).filter((e) => e.kind === 'request' && e.path === '/api/chat');
  expect(asked).toHaveLength(2);
  expect(asked[1].body.messages).toEqual([
    { role: 'user', content: 'Capital of France?' },
    { role: 'assistant', content: 'Paris is the capital.' },
    { role: 'user', content: 'And its population?' },
  ]);
  await expect(page.getByTestId('message-user')).toHaveCount(2);
  await expect(page.getByTestId('message-assistant')).toHaveCount(2);
});

test('a failure mid-stream shows the error, keeps the text, and the next message works', async ({ page }) => {
  await setBehavior({ tokens: 10, token_delay_ms: 20, fail_after: 3, error_message: 'model runner has unexpectedly stopped' });
  await openChat(page);

  await send(page, 'Try');
  await expect(lastAnswer(page).getByTestId('error')).toHaveText('model runner has unexpectedly stopped');
  await expect(answerText(page)).toHaveText('The quick brown');
  await expect(page.getByTestId('send-button')).toHaveText('Send');

  await setBehavior({ reply: 'Working again.' });
  await send(page, 'Again');
  await waitForAnswer(page);
  await expect(answerText(page)).toHaveText('Working again.');
  await expect(page.getByTestId('message-assistant').first().getByTestId('message-text')).toHaveText('The quick brown');
});

test('an unknown model is reported and the next message works', async ({ page }) => {
  await openChat(page);
  // The model vanished between listing and asking (e.g. removed in Ollama).
  await page.route('**/api/v1/conversations/*/messages', async (route) => {
    const body = JSON.parse(route.request().postData()!);
    await route.continue({ postData: JSON.stringify({ ...body, model: 'vanished:latest' }) });
  });

  await send(page, 'Hello?');
  await expect(lastAnswer(page).getByTestId('error')).toHaveText(
    'model "vanished:latest" not found, try pulling it first',
  );
  await expect(page.getByTestId('send-button')).toHaveText('Send');

  await page.unroute('**/api/v1/conversations/*/messages');
  await send(page, 'Hello again');
  await waitForAnswer(page);
  await expect(answerText(page)).toHaveText('The quick brown fox jumps over the lazy');
});

test('a dead backend is reported readably', async ({ page }) => {
  await openChat(page);
  await page.route('**/api/v1/conversations/*/messages', (route) =>
    route.fulfill({
      status: 502,
      contentType: 'application/json',
      body: JSON.stringify({ error: 'ollama is unreachable: connection refused' }),
    }),
  );
  await send(page, 'Anyone there?');
  await expect(lastAnswer(page).getByTestId('error')).toContainText('ollama is unreachable');
  await expect(page.getByTestId('send-button')).toHaveText('Send');
});

test('a dropped connection resumes with every token exactly once', async ({ page }) => {
  const words = Array.from({ length: 40 }, (_, i) => `w${i + 1}`);
  const reply = words.join(' ');
  await setBehavior({ reply, token_delay_ms: 50 });
  const proxy = await CuttableProxy.start(test.info().project.use.baseURL!);
  try {
    await openChat(page, proxy.url);
    await send(page, 'Count for me');
    await expect.poll(async () => (await answerText(page).textContent())!.split(' ').length).toBeGreaterThan(5);

    proxy.cut();
    await expect(lastAnswer(page).getByTestId('message-note')).toHaveText('Connection lost, reconnecting…');
    await page.waitForTimeout(800);
    proxy.restore();

    await waitForAnswer(page);
    await expect(answerText(page)).toHaveText(reply);
    await expect(lastAnswer(page).getByTestId('error')).toHaveCount(0);
    const reads = proxy.requests.filter((line) => line.includes('/events'));
    expect(reads.length).toBeGreaterThanOrEqual(2);
  } finally {
    await proxy.close();
  }
});

test('model output is shown as text and never run', async ({ page }) => {
  const reply = '<img src=x onerror="window.__xss=1"> <script>window.__xss=2</script> <b>bold</b>';
  await setBehavior({ reply });
  await openChat(page);

  await send(page, 'Say something dangerous');
  await waitForAnswer(page);

  await expect(answerText(page)).toHaveText(reply);
  expect(await page.evaluate(() => (window as any).__xss)).toBeUndefined();
  await expect(page.locator('.messages img, .messages script, .messages b')).toHaveCount(0);
});

test('the keyboard alone drives the chat', async ({ page }) => {
  await setBehavior({ reply: 'Sure.' });
  await openChat(page);
  const input = page.getByTestId('message-input');
  const button = page.getByTestId('send-button');

  await input.focus();
  await page.keyboard.press('Enter');
  await expect(page.getByTestId('message-user')).toHaveCount(0);
  await expect(button).toBeDisabled();

  await page.keyboard.type('**line** one');
  await page.keyboard.press('Shift+Enter');
  await page.keyboard.type('line two');
  await expect(input).toHaveValue('**line** one\nline two');
  await page.keyboard.press('Enter');
  await waitForAnswer(page);
  // The user's own words as typed: no Markdown, the line break on screen
  // (innerText follows the CSS; a string toHaveText would fold the break).
  const sent = page.getByTestId('message-user').getByTestId('message-text');
  await expect(sent).toHaveJSProperty('innerText', '**line** one\nline two');
  await expect(sent.locator('strong')).toHaveCount(0);

  // Shift+Tab from the message box reaches the clear button; Space presses it.
  await input.focus();
  const clear = page.getByTestId('clear-button');
  for (let i = 0; i < 6 && !(await clear.evaluate((el) => el === document.activeElement)); i++) {
    await page.keyboard.press('Shift+Tab');
  }
  await expect(clear).toBeFocused();
  await page.keyboard.press('Space');
  await expect(page.getByTestId('message-user')).toHaveCount(0);
  await expect(page.getByTestId('message-assistant')).toHaveCount(0);
});

test('screenshots of a finished chat at desktop and phone width', async ({ page }, testInfo) => {
  await setBehavior({ reply: 'The sky looks blue because air scatters short (blue) wavelengths of sunlight more than long ones.' });
  await page.setViewportSize({ width: 1280, height: 800 });
  await openChat(page);
  await send(page, 'Why is the sky blue?');
  await waitForAnswer(page);
  await send(page, 'In one word?');
  await waitForAnswer(page);

  for (const [name, size] of [
    ['chat-desktop', { width: 1280, height: 800 }],
    ['chat-phone', { width: 390, height: 844 }],
  ] as const) {
    await page.setViewportSize(size);
    const path = testInfo.outputPath(`${name}.png`);
    await page.screenshot({ path, fullPage: true });
    await testInfo.attach(name, { path, contentType: 'image/png' });
    // Nothing spills sideways at this width.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
  }

  // Dark mode follows the system setting.
  const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const luminance = (rgb: string) => {
    const [r, g, b] = rgb.match(/\d+/g)!.map(Number);
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.emulateMedia({ colorScheme: 'light' });
  const light = await background();
  await page.emulateMedia({ colorScheme: 'dark' });
  const dark = await background();
  expect(luminance(dark)).toBeLessThan(luminance(light) - 100);
  const path = testInfo.outputPath('chat-dark.png');
  await page.screenshot({ path, fullPage: true });
  await testInfo.attach('chat-dark', { path, contentType: 'image/png' });
});

test('a new token touches only the growing bubble, never the history', async ({ page }) => {
  await setBehavior({ reply: 'First answer here.' });
  await openChat(page);
  await send(page, 'One');
  await waitForAnswer(page);
  await setBehavior({ tokens: 20, token_delay_ms: 20 });

  // Tag the existing bubbles, then record every DOM change outside the new answer.
  await page.evaluate(() => {
    document.querySelectorAll('.messages article').forEach((el) => ((el as any).__kept = true));
    const stray: string[] = [];
    (window as any).__stray = stray;
    new MutationObserver((records) => {
      const articles = document.querySelectorAll('.messages article');
      const growing = articles[articles.length - 1];
      for (const record of records) {
        const target = record.target as Node;
        const insideGrowing = growing?.contains(target);
        const addsTurns = target === document.querySelector('.messages') && record.removedNodes.length === 0;
        if (!insideGrowing && !addsTurns) stray.push(`${record.type} on ${(target as Element).outerHTML ?? target.textContent}`);
      }
    }).observe(document.querySelector('.messages')!, { subtree: true, childList: true, characterData: true, attributes: true });
  });
  await send(page, 'Two');
  await waitForAnswer(page);

  expect(await page.evaluate(() => (window as any).__stray)).toEqual([]);
  const kept = await page.evaluate(() =>
    Array.from(document.querySelectorAll('.messages article')).map((el) => (el as any).__kept === true),
  );
  expect(kept).toEqual([true, true, false, false]);
});
