// A chat with the real model run inside the server (Gemma 3 270M, fetched
// by `make setup`): no Ollama involved.
import { expect, test } from '@playwright/test';
import { events, resetFake } from './fake';
import { lastAnswer, openChat, recordAnswerTexts, recordedTexts, send } from './chat-page';

test.beforeEach(resetFake);

test('chats with the embedded model, token by token', async ({ page }) => {
  test.setTimeout(90_000);
  await openChat(page);
  await page.getByTestId('model-picker').selectOption('gemma3:270m');
  await recordAnswerTexts(page);

  // An open-ended ask: a one-word answer ("France") would fit in one frame
  // and prove nothing about streaming; lists run to many tokens.
  await send(page, 'Name five fruits, one per line.');
  await expect(lastAnswer(page).getByTestId('message-stats')).toBeVisible({ timeout: 60_000 });

  const texts = await recordedTexts(page);
  expect(texts.length).toBeGreaterThan(1);
  expect(texts[texts.length - 1].text.trim().length).toBeGreaterThan(0);
  await expect(lastAnswer(page).getByTestId('message-stats')).toContainText('tokens/s');
  await expect(lastAnswer(page).getByTestId('error')).toHaveCount(0);
  // Nothing went to the Ollama upstream.
  expect((await events()).filter((e) => e.kind === 'request')).toHaveLength(0);
});
