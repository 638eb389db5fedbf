// A reasoning model's thoughts: collapsed above the answer while they
// stream, opened on demand, kept with the conversation.
import { expect, test } from '@playwright/test';
import { resetFake, setBehavior } from './fake';
import { answerText, lastAnswer, openChat, send, waitForAnswer } from './chat-page';

test.beforeEach(resetFake);

const THINKING = 'The user asks for a capital.\nFrance is a country; its capital is Paris.';

test('reasoning streams collapsed above the answer, and opens on demand', async ({ page }) => {
  await setBehavior({ thinking: THINKING, reply: 'The capital of France is **Paris**.', token_delay_ms: 100 });
  await openChat(page);
  await send(page, 'What is the capital of France?');

  const answer = lastAnswer(page);
  const reasoning = answer.getByTestId('reasoning');
  // While the model thinks: the section is there, closed, saying so, and
  // the answer has no text yet.
  await expect(reasoning).toBeVisible();
  await expect(answer.getByTestId('reasoning-summary')).toHaveText('Thinking…');
  await expect(reasoning).not.toHaveAttribute('open', '');
  await expect(answer.getByTestId('reasoning-text')).toBeHidden();
  // The thoughts stream in as they come, before the answer's first word.
  await expect(answer.getByTestId('reasoning-text')).toContainText('The user asks');
  await expect(answerText(page)).toHaveText('');

  await waitForAnswer(page);
  // Above the answer.
  const [section, text] = [await reasoning.boundingBox(), await answerText(page).boundingBox()];
  expect(section!.y + section!.height).toBeLessThanOrEqual(text!.y);
  await expect(answer.getByTestId('reasoning-summary')).toHaveText('Reasoning');
  await expect(reasoning).not.toHaveAttribute('open', '');
  // The thoughts stay out of the answer.
  await expect(answerText(page)).toHaveText('The capital of France is Paris.');

  await answer.getByTestId('reasoning-summary').click();
  await expect(reasoning).toHaveAttribute('open', '');
  await expect(answer.getByTestId('reasoning-text')).toBeVisible();
  // Plain text, line breaks kept.
  expect(await answer.getByTestId('reasoning-text').innerText()).toBe(THINKING);
});

test('<think> tags in the text become the reasoning, and it survives a reload', async ({ page }) => {
  await setBehavior({ reply: '<think>Paris is the capital.</think>\n\nParis.' });
  await openChat(page);
  await send(page, 'Capital of France?');
  await waitForAnswer(page);

  await expect(answerText(page)).toHaveText('Paris.');
  // Closed, so only in the DOM: its text content is the reasoning.
  await expect(lastAnswer(page).getByTestId('reasoning-text')).toHaveText('Paris is the capital.');
  await expect(page).toHaveURL(/\/c\//);

  // The server keeps the reasoning apart and renders it in the first HTML.
  const html = await (await page.request.get(page.url())).text();
  expect(html).toContain('data-testid="reasoning"');
  await page.reload();
  await openChat(page, page.url());
  await expect(answerText(page)).toHaveText('Paris.');
  await lastAnswer(page).getByTestId('reasoning-summary').click();
  await expect(lastAnswer(page).getByTestId('reasoning-text')).toHaveText('Paris is the capital.');
});
