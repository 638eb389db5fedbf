// Chats with the real models run inside the server (SmolLM2 135M Instruct
// and Gemma 3 270M, fetched by `make setup`): no Ollama involved.
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

test('the chat model answers a question sensibly', async ({ page }) => {
  test.setTimeout(90_000);
  await openChat(page);
  await page.getByTestId('model-picker').selectOption('smollm2:135m');
  await page.getByTestId('settings-button').click();
  await page.getByTestId('option-temperature').fill('0');
  await page.getByTestId('settings-save').click();

  await send(page, 'What is the capital of France?');
  await expect(lastAnswer(page).getByTestId('message-stats')).toBeVisible({ timeout: 60_000 });

  await expect(lastAnswer(page).getByTestId('message-text')).toContainText('Paris');
  await expect(lastAnswer(page).getByTestId('error')).toHaveCount(0);
  expect((await events()).filter((e) => e.kind === 'request')).toHaveLength(0);
});
