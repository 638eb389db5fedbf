// Conversations kept on the server, as a person uses them: a new chat that
// gets its own address, the sidebar (order, search, rename, delete),
// reloading mid-answer, regenerate and edit with ‹ n/m ›, settings kept,
// and a conversation that shows with JavaScript off.
import { expect, test, type APIRequestContext, type Page } from '@playwright/test';
import { events, resetFake, setBehavior } from './fake';
import { answerText, lastAnswer, openChat, send, waitForAnswer } from './chat-page';

test.beforeEach(resetFake);

/** A word no other test uses, so a search finds only this test's chats. */
function unique(label: string): string {
  return `${label}${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}

async function createConversation(api: APIRequestContext, body: object): Promise<string> {
  const response = await api.post('/api/v1/conversations', { data: body });
  expect(response.status()).toBe(201);
  return (await response.json()).id;
}

/** Posts a question through the API and waits for its answer to be saved. */
async function askThroughApi(api: APIRequestContext, id: string, content: string): Promise<void> {
  const posted = await api.post(`/api/v1/conversations/${id}/messages`, { data: { content } });
  expect(posted.status()).toBe(201);
  const reply = (await posted.json()).reply.id;
  await expect
    .poll(async () => {
      const conversation = await (await api.get(`/api/v1/conversations/${id}`)).json();
      return conversation.messages.find((m: any) => m.id === reply).status;
    })
    .toBe('complete');
}

function items(page: Page) {
  return page.getByTestId('conversation-list').getByTestId('conversation-item');
}

async function search(page: Page, text: string): Promise<void> {
  await page.getByTestId('conversation-search').fill(text);
}

test('a new chat gets its own address and is listed first, and a reload keeps it', async ({ page }) => {
  await setBehavior({ reply: 'Rome in three days: the Forum, the Vatican, Trastevere.' });
  const word = unique('Rome');
  await openChat(page);

  await send(page, `Plan a trip: ${word}`);
  await waitForAnswer(page);

  await expect(page).toHaveURL(/\/c\/[0-9a-f]{32}$/);
  await expect(items(page).first()).toHaveText(new RegExp(word));
  await expect(items(page).first()).toHaveClass(/shown/);
  await page.reload();
  await expect(page.locator('.chat[data-hydrated="true"]')).toBeVisible();
  await expect(page.getByTestId('message-user')).toHaveText([new RegExp(word)]);
  await expect(answerText(page)).toHaveText('Rome in three days: the Forum, the Vatican, Trastevere.');
  await expect(lastAnswer(page).getByTestId('message-stats')).toContainText('tokens');

  // New chat leaves it in the list, and the list opens it again in place.
  await page.getByTestId('new-chat-button').click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByTestId('message-user')).toHaveCount(0);
  await items(page).filter({ hasText: word }).getByRole('link').click();
  await expect(page).toHaveURL(/\/c\//);
  await expect(answerText(page)).toHaveText(/^Rome in three days/);
  // Back goes to the new chat.
  await page.goBack();
  await expect(page.getByTestId('message-user')).toHaveCount(0);
});

test('the sidebar lists newest first, searches, renames in place and deletes', async ({ page }) => {
  const word = unique('Garden');
  const older = await createConversation(page.request, { title: `${word} older`, model: 'llama3.2' });
  await page.waitForTimeout(5);
  const newer = await createConversation(page.request, { title: `${word} newer`, model: 'llama3.2' });
  await openChat(page);

  await search(page, word);
  await expect(items(page)).toHaveText([new RegExp(`${word} newer`), new RegExp(`${word} older`)]);
  await search(page, `${word} old`);
  await expect(items(page)).toHaveText([new RegExp(`${word} older`)]);

  // Rename in place: Enter keeps the new name, everywhere.
  await search(page, word);
  const item = items(page).filter({ hasText: `${word} older` });
  await item.getByTestId('rename-button').click();
  const field = page.getByTestId('rename-input');
  await expect(field).toBeFocused();
  await field.fill(`${word} renamed`);
  // The list changes at once; the server has it when its PATCH answers.
  const renamed = page.waitForResponse(
    (response) => response.url().endsWith(`/api/v1/conversations/${older}`) && response.request().method() === 'PATCH',
  );
  await field.press('Enter');
  await expect(items(page).filter({ hasText: `${word} renamed` })).toHaveCount(1);
  expect((await renamed).ok()).toBe(true);
  const saved = await (await page.request.get(`/api/v1/conversations/${older}`)).json();
  expect(saved.title).toBe(`${word} renamed`);

  // Delete asks first; dismissing keeps it.
  page.once('dialog', (dialog) => dialog.dismiss());
  await items(page).filter({ hasText: `${word} newer` }).getByTestId('delete-button').click();
  await expect(items(page)).toHaveCount(2);
  page.once('dialog', (dialog) => dialog.accept());
  const deleted = page.waitForResponse(
    (response) => response.url().endsWith(`/api/v1/conversations/${newer}`) && response.request().method() === 'DELETE',
  );
  await items(page).filter({ hasText: `${word} newer` }).getByTestId('delete-button').click();
  await expect(items(page)).toHaveText([new RegExp(`${word} renamed`)]);
  expect((await deleted).ok()).toBe(true);
  expect((await page.request.get(`/api/v1/conversations/${newer}`)).status()).toBe(404);
});

test('reloading mid-answer brings back the text so far and streams on', async ({ page }) => {
  await setBehavior({ tokens: 90, token_delay_ms: 40 });
  await openChat(page);
  await send(page, `Talk for a while ${unique('x')}`);
  await expect.poll(async () => ((await answerText(page).textContent()) ?? '').split(' ').length).toBeGreaterThan(20);

  await page.reload();
  await expect(page.locator('.chat[data-hydrated="true"]')).toBeVisible();

  // The answer goes on growing after the reload, and ends whole: every word once.
  await waitForAnswer(page);
  const text = (await answerText(page).textContent())!;
  expect(text.split(' ')).toHaveLength(90);
  expect(text.startsWith('The quick brown fox jumps over the lazy dog. The quick')).toBeTruthy();
  const chats = (await events()).filter((e) => e.kind === 'request' && e.path === '/api/chat');
  expect(chats).toHaveLength(1);
});

test('the same conversation open in two tabs streams in both', async ({ context, page }) => {
  await setBehavior({ tokens: 60, token_delay_ms: 40 });
  await openChat(page);
  await send(page, `Talk to both of us ${unique('tab')}`);
  await expect(page).toHaveURL(/\/c\//);
  await expect.poll(async () => ((await answerText(page).textContent()) ?? '').length).toBeGreaterThan(0);

  const second = await context.newPage();
  await openChat(second, new URL(page.url()).pathname);

  await waitForAnswer(page);
  await waitForAnswer(second);
  for (const tab of [page, second]) {
    const text = (await answerText(tab).textContent())!;
    expect(text.split(' ')).toHaveLength(60);
  }
  await second.close();
});

test('regenerate and edit add versions, switched with ‹ n/m › and remembered', async ({ page }) => {
  await setBehavior({ reply: 'First answer.' });
  await openChat(page);
  await send(page, 'The question');
  await waitForAnswer(page);

  await setBehavior({ reply: 'Second answer.' });
  await lastAnswer(page).getByTestId('regenerate-button').click();
  await waitForAnswer(page);
  await expect(answerText(page)).toHaveText('Second answer.');
  const answer = lastAnswer(page);
  await expect(answer.getByTestId('branch-position')).toHaveText('2/2');
  await answer.getByTestId('branch-prev').click();
  await expect(answerText(page)).toHaveText('First answer.');
  await expect(lastAnswer(page).getByTestId('branch-position')).toHaveText('1/2');
  // The version shown is remembered.
  await expect
    .poll(async () => {
      await page.reload();
      await expect(page.locator('.chat[data-hydrated="true"]')).toBeVisible();
      return answerText(page).textContent();
    })
    .toBe('First answer.');

  // Edit the question: the new one goes beside it, with its own answer.
  await setBehavior({ reply: 'Edited answer.' });
  const question = page.getByTestId('message-user').last();
  await question.getByTestId('edit-button').click();
  await expect(page.getByTestId('message-input')).toHaveValue('The question');
  await expect(page.getByTestId('message-input')).toBeFocused();
  await expect(page.getByTestId('editing-note')).toBeVisible();
  await page.getByTestId('message-input').fill('The better question');
  await page.getByTestId('message-input').press('Enter');
  await waitForAnswer(page);
  await expect(page.getByTestId('editing-note')).toBeHidden();
  await expect(page.getByTestId('message-user').last().getByTestId('message-text')).toHaveText('The better question');
  await expect(page.getByTestId('message-user').last().getByTestId('branch-position')).toHaveText('2/2');
  await expect(answerText(page)).toHaveText('Edited answer.');
  // The model got the edited question alone, not the first version.
  const chats = (await events()).filter((e) => e.kind === 'request' && e.path === '/api/chat');
  expect(chats[chats.length - 1].body.messages).toEqual([{ role: 'user', content: 'The better question' }]);
  // Back to the first version of the question, with the answer last shown there.
  await page.getByTestId('message-user').last().getByTestId('branch-prev').click();
  await expect(page.getByTestId('message-user').last().getByTestId('message-text')).toHaveText('The question');
  await expect(answerText(page)).toHaveText('Second answer.');
});

test('Copy puts a message on the clipboard', async ({ context, page }) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  await setBehavior({ reply: 'Copy me, exactly.' });
  await openChat(page);
  await send(page, 'Say something to copy');
  await waitForAnswer(page);

  await lastAnswer(page).getByTestId('copy-button').click();
  await expect.poll(() => page.evaluate(() => navigator.clipboard.readText())).toBe('Copy me, exactly.');
  await page.getByTestId('message-user').last().getByTestId('copy-button').click();
  await expect.poll(() => page.evaluate(() => navigator.clipboard.readText())).toBe('Say something to copy');
});

test('a conversation keeps its system prompt and options', async ({ page }) => {
  await setBehavior({ reply: 'Bonjour.' });
  await openChat(page);
  await page.getByTestId('settings-button').click();
  await page.getByTestId('system-prompt').fill('Answer in French.');
  await page.getByTestId('option-temperature').fill('0.3');
  await page.getByTestId('option-num-predict').fill('64');
  await page.getByTestId('settings-save').click();

  await send(page, 'Hello');
  await waitForAnswer(page);

  const chats = (await events()).filter((e) => e.kind === 'request' && e.path === '/api/chat');
  expect(chats[0].body.messages[0]).toEqual({ role: 'system', content: 'Answer in French.' });
  expect(chats[0].body.options).toEqual({ temperature: 0.3, num_predict: 64 });
  await page.reload();
  await expect(page.locator('.chat[data-hydrated="true"]')).toBeVisible();
  await page.getByTestId('settings-button').click();
  await expect(page.getByTestId('system-prompt')).toHaveValue('Answer in French.');
  await expect(page.getByTestId('option-temperature')).toHaveValue('0.3');
});

test('a failed answer says so after a reload, keeping its text', async ({ page }) => {
  await setBehavior({ fail_after: 3, error_message: 'model runner has unexpectedly stopped' });
  await openChat(page);
  await send(page, 'Try');
  await expect(lastAnswer(page).getByTestId('error')).toHaveText('model runner has unexpectedly stopped');

  await page.reload();
  await expect(page.locator('.chat[data-hydrated="true"]')).toBeVisible();
  await expect(answerText(page)).toHaveText('The quick brown');
  await expect(lastAnswer(page).getByTestId('error')).toHaveText('model runner has unexpectedly stopped');
});

test('a conversation is rendered whole with JavaScript off', async ({ browser, page }) => {
  await setBehavior({ reply: 'Served without scripts.' });
  const word = unique('Static');
  const id = await createConversation(page.request, { title: word, model: 'llama3.2' });
  await askThroughApi(page.request, id, 'Does this show?');

  const context = await browser.newContext({ javaScriptEnabled: false });
  const noScript = await context.newPage();
  await noScript.goto(`/c/${id}`);
  await expect(noScript.getByTestId('message-user').getByTestId('message-text')).toHaveText('Does this show?');
  await expect(noScript.getByTestId('message-assistant').getByTestId('message-text')).toHaveText(
    'Served without scripts.',
  );
  await expect(noScript.getByTestId('conversation-item').filter({ hasText: word })).toHaveCount(1);
  // A link to it works without scripts too; a missing one is a 404 page that says so.
  const missing = await noScript.goto('/c/0123456789abcdef0123456789abcdef');
  expect(missing!.status()).toBe(404);
  await expect(noScript.getByRole('alert')).toContainText('no such conversation');
  await context.close();
});
