// The official `ollama` client from npm, unchanged, pointed at llm-chat as
// its OLLAMA_HOST: in front of fake-ollama and of the embedded model. No
// browser involved; Playwright's runner only provides the servers.
import { expect, test } from '@playwright/test';
import { Ollama } from 'ollama';
import { events, resetFake, setBehavior } from './fake';

test.beforeEach(resetFake);

const ollama = new Ollama({ host: `http://127.0.0.1:${process.env.E2E_APP_PORT}` });

test('lists every backend\'s models, and describes one', async () => {
  expect((await ollama.version()).version).toBe('0.12.6');
  const { models } = await ollama.list();
  const names = models.map((model) => model.name);
  expect(names).toContain('llama3.2:latest');
  expect(names).toContain('smollm2:135m');
  const smollm = models.find((model) => model.name === 'smollm2:135m')!;
  expect(smollm.details.format).toBe('gguf');
  expect(smollm.details.family).toBe('llama');
  expect(smollm.details.quantization_level).toBe('Q4_1');

  const card = await ollama.show({ model: 'smollm2:135m' });
  expect(card.template).toContain('<|im_start|>');
  expect(card.model_info['general.architecture']).toBe('llama');
  expect(card.capabilities).toContain('completion');
});

test('chat and generate, whole and streamed', async () => {
  await setBehavior({ reply: 'Blue, because of Rayleigh scattering.' });
  const whole = await ollama.chat({
    model: 'llama3.2',
    messages: [{ role: 'user', content: 'Why is the sky blue?' }],
  });
  expect(whole.message.content).toBe('Blue, because of Rayleigh scattering.');
  expect(whole.done_reason).toBe('stop');
  expect(whole.eval_count).toBe(5);

  const stream = await ollama.chat({
    model: 'llama3.2',
    messages: [{ role: 'user', content: 'Why is the sky blue?' }],
    stream: true,
  });
  const parts: string[] = [];
  let last;
  for await (const part of stream) {
    if (part.message.content) parts.push(part.message.content);
    last = part;
  }
  expect(parts).toHaveLength(5);
  expect(parts.join('')).toBe('Blue, because of Rayleigh scattering.');
  expect(last?.done).toBe(true);

  await setBehavior({ reply: 'upon a time there was' });
  const generated = await ollama.generate({ model: 'llama3.2', prompt: 'Once', options: { num_predict: 3 } });
  expect(generated.response).toBe('upon a time');
  expect(generated.done_reason).toBe('length');
  expect(generated.context.length).toBeGreaterThan(0);
  const tokens: string[] = [];
  for await (const part of await ollama.generate({ model: 'llama3.2', prompt: 'Once', stream: true })) {
    tokens.push(part.response);
  }
  expect(tokens.join('')).toBe('upon a time there was');
});

test('embeddings from Ollama and from the embedded model', async () => {
  const norm = (vector: number[]) => Math.sqrt(vector.reduce((sum, x) => sum + x * x, 0));
  const fake = await ollama.embed({ model: 'llama3.2', input: ['the red fox', 'a blue sky'] });
  expect(fake.embeddings).toHaveLength(2);
  expect(fake.embeddings[0]).toHaveLength(8);
  expect(norm(fake.embeddings[1])).toBeCloseTo(1, 5);

  const embedded = await ollama.embed({ model: 'smollm2:135m', input: 'Paris is the capital of France.' });
  expect(embedded.embeddings[0]).toHaveLength(576);
  expect(norm(embedded.embeddings[0])).toBeCloseTo(1, 4);
  expect(embedded.prompt_eval_count).toBeGreaterThan(5);
});

test('errors reach the client as its own ResponseError', async () => {
  const unknown = ollama.chat({ model: 'no-such-model', messages: [{ role: 'user', content: 'Hi' }] });
  await expect(unknown).rejects.toMatchObject({
    name: 'ResponseError',
    status_code: 404,
    error: 'model "no-such-model" not found, try pulling it first',
  });

  await setBehavior({ fail_after: 2 });
  const failing = await ollama.chat({
    model: 'llama3.2',
    messages: [{ role: 'user', content: 'Hi' }],
    stream: true,
  });
  const read = async () => {
    for await (const _ of failing) {
      // the error line ends it
    }
  };
  await expect(read()).rejects.toThrow('model runner has unexpectedly stopped');
});

test('aborting mid-stream stops the model upstream at once', async () => {
  await setBehavior({ tokens: 400, token_delay_ms: 20 });
  const stream = await ollama.chat({
    model: 'llama3.2',
    messages: [{ role: 'user', content: 'Talk' }],
    stream: true,
  });
  let parts = 0;
  const reading = (async () => {
    for await (const _ of stream) {
      parts += 1;
      if (parts === 3) stream.abort();
    }
  })();
  await expect(reading).rejects.toThrow(/abort/i);
  const aborted = Date.now();
  expect(parts).toBeLessThan(50);
  await expect
    .poll(async () => (await events()).some((e) => e.kind === 'disconnected'), { timeout: 1000, intervals: [50] })
    .toBe(true);
  expect(Date.now() - aborted).toBeLessThan(1000);
});

test('pull with progress, copy and delete go to the Ollama upstream', async () => {
  await setBehavior({ pull_steps: 4 });
  const progress = await ollama.pull({ model: 'tinyllama:1.1b', stream: true });
  const completed: number[] = [];
  let status = '';
  for await (const part of progress) {
    if (part.completed) completed.push(part.completed);
    status = part.status;
  }
  expect(completed).toHaveLength(4);
  expect(completed).toEqual([...completed].sort((a, b) => a - b));
  expect(status).toBe('success');
  const listed = async () => (await ollama.list()).models.map((model) => model.name);
  expect(await listed()).toContain('tinyllama:1.1b');

  await ollama.copy({ source: 'tinyllama:1.1b', destination: 'tiny-copy:latest' });
  expect(await listed()).toContain('tiny-copy:latest');
  await ollama.delete({ model: 'tiny-copy:latest' });
  await ollama.delete({ model: 'tinyllama:1.1b' });
  expect(await listed()).not.toContain('tinyllama:1.1b');
  expect(await listed()).not.toContain('tiny-copy:latest');

  // The embedded models are files llm-chat does not delete.
  await expect(ollama.delete({ model: 'smollm2:135m' })).rejects.toMatchObject({ status_code: 400 });
});

test('the embedded chat model answers, and ps shows it loaded', async () => {
  test.setTimeout(90_000);
  const stream = await ollama.chat({
    model: 'smollm2:135m',
    messages: [{ role: 'user', content: 'What is the capital of France?' }],
    options: { num_predict: 48, temperature: 0 },
    stream: true,
  });
  const parts: string[] = [];
  for await (const part of stream) {
    if (part.message.content) parts.push(part.message.content);
  }
  expect(parts.length).toBeGreaterThan(1);
  expect(parts.join('')).toContain('Paris');
  // Nothing went to the Ollama upstream.
  expect((await events()).filter((e) => e.kind === 'request')).toHaveLength(0);

  const { models } = await ollama.ps();
  const loaded = models.find((model) => model.name === 'smollm2:135m');
  expect(loaded).toBeTruthy();
  expect(new Date(loaded!.expires_at).getTime()).toBeGreaterThan(Date.now());
});
