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
  // Greedy decoding with a token limit: the base model's answer is the same
  // 48 tokens every run (sampled, it once stopped after one token, which
  // fits in one frame and proves nothing about streaming).
  await page.getByTestId('settings-button').click();
  await page.getByTestId('option-temperature').fill('0');
  await page.getByTestId('option-num-predict').fill('48');
  await page.getByTestId('settings-save').click();
  await recordAnswerTexts(page);

  await send(page, 'The five largest cities in Europe are');
  await expect(lastAnswer(page).getByTestId('message-stats')).toBeVisible({ timeout: 60_000 });

  const texts = await recordedTexts(page);
  expect(texts.length).toBeGreaterThan(1);
  await expect(lastAnswer(page).getByTestId('message-stats')).toContainText('48 tokens');
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
