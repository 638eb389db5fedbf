// The official `openai` SDK from npm, unchanged, pointed at llm-chat's /v1:
// in front of fake-ollama and of the embedded model. No browser involved;
// Playwright's runner only provides the servers.
import { expect, test } from '@playwright/test';
import OpenAI from 'openai';
import { events, resetFake, setBehavior } from './fake';

test.beforeEach(resetFake);

const client = new OpenAI({
  baseURL: `http://127.0.0.1:${process.env.E2E_APP_PORT}/v1`,
  apiKey: 'not-needed',
  maxRetries: 0,
});

test('lists every backend\'s models', async () => {
  const ids: string[] = [];
  const owners = new Map<string, string>();
  for await (const model of client.models.list()) {
    ids.push(model.id);
    owners.set(model.id, model.owned_by);
  }
  expect(ids).toContain('llama3.2:latest');
  expect(ids).toContain('smollm2:135m');
  expect(owners.get('llama3.2:latest')).toBe('ollama');
  expect(owners.get('smollm2:135m')).toBe('embedded');
  const one = await client.models.retrieve('qwen2.5:0.5b');
  expect(one.id).toBe('qwen2.5:0.5b');
});

test('chat, whole and streamed', async () => {
  await setBehavior({ reply: 'Blue, because of Rayleigh scattering.' });
  const whole = await client.chat.completions.create({
    model: 'llama3.2',
    messages: [{ role: 'user', content: 'Why is the sky blue?' }],
  });
  expect(whole.choices[0].message.content).toBe('Blue, because of Rayleigh scattering.');
  expect(whole.choices[0].finish_reason).toBe('stop');
  expect(whole.usage?.completion_tokens).toBe(5);

  const stream = await client.chat.completions.create({
    model: 'llama3.2',
    messages: [{ role: 'user', content: 'Why is the sky blue?' }],
    stream: true,
    stream_options: { include_usage: true },
  });
  const deltas: string[] = [];
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | null | undefined;
  for await (const chunk of stream) {
    if (chunk.choices[0]?.delta?.content) deltas.push(chunk.choices[0].delta.content);
    if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
    if (chunk.usage) usage = chunk.usage;
  }
  expect(deltas.length).toBe(5);
  expect(deltas.join('')).toBe('Blue, because of Rayleigh scattering.');
  expect(finish).toBe('stop');
  expect(usage?.total_tokens).toBeGreaterThan(5);
});

test('legacy completions', async () => {
  await setBehavior({ reply: 'upon a time there was' });
  const completion = await client.completions.create({ model: 'llama3.2', prompt: 'Once', max_tokens: 3 });
  expect(completion.choices[0].text).toBe('upon a time');
  expect(completion.choices[0].finish_reason).toBe('length');
});

test('embeddings, as the SDK asks for them (base64) and as floats', async () => {
  const norm = (vector: number[]) => Math.sqrt(vector.reduce((sum, x) => sum + x * x, 0));
  const decoded = await client.embeddings.create({ model: 'llama3.2', input: ['the red fox', 'a blue sky'] });
  expect(decoded.data.map((item) => item.index)).toEqual([0, 1]);
  expect(decoded.data[0].embedding).toHaveLength(8);
  expect(norm(decoded.data[0].embedding)).toBeCloseTo(1, 5);
  expect(decoded.usage.prompt_tokens).toBe(6);
  const floats = await client.embeddings.create({
    model: 'llama3.2', input: ['the red fox', 'a blue sky'], encoding_format: 'float',
  });
  // The same f32 values: JSON writes each float32 in its shortest form.
  expect(floats.data[0].embedding.map(Math.fround)).toEqual(decoded.data[0].embedding);

  const embedded = await client.embeddings.create({ model: 'smollm2:135m', input: 'Paris', dimensions: 32 });
  expect(embedded.data[0].embedding).toHaveLength(32);
  expect(norm(embedded.data[0].embedding)).toBeCloseTo(1, 4);
});

test('errors are the SDK\'s own error classes', async () => {
  const unknown = client.chat.completions.create({
    model: 'no-such-model',
    messages: [{ role: 'user', content: 'Hi' }],
  });
  await expect(unknown).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  await expect(unknown).rejects.toMatchObject({ status: 404, code: 'model_not_found' });

  const two = client.chat.completions.create({
    model: 'llama3.2',
    messages: [{ role: 'user', content: 'Hi' }],
    n: 2,
  });
  await expect(two).rejects.toBeInstanceOf(OpenAI.BadRequestError);
  await expect(two).rejects.toMatchObject({ param: 'n', code: 'unsupported_parameter' });

  await setBehavior({ fail_after: 2 });
  const failing = await client.chat.completions.create({
    model: 'llama3.2',
    messages: [{ role: 'user', content: 'Hi' }],
    stream: true,
  });
  const read = async () => {
    for await (const _ of failing) {
      // the error frame ends it
    }
  };
  await expect(read()).rejects.toThrow('model runner has unexpectedly stopped');
});

test('aborting mid-stream stops the model upstream at once', async () => {
  await setBehavior({ tokens: 400, token_delay_ms: 20 });
  const controller = new AbortController();
  const stream = await client.chat.completions.create(
    { model: 'llama3.2', messages: [{ role: 'user', content: 'Talk' }], stream: true },
    { signal: controller.signal },
  );
  let chunks = 0;
  const reading = (async () => {
    for await (const _ of stream) {
      chunks += 1;
      if (chunks === 3) controller.abort();
    }
  })();
  // The SDK ends the iteration quietly once its signal aborts.
  await reading;
  const aborted = Date.now();
  expect(chunks).toBeLessThan(50);
  await expect
    .poll(async () => (await events()).some((e) => e.kind === 'disconnected'), { timeout: 1000, intervals: [50] })
    .toBe(true);
  expect(Date.now() - aborted).toBeLessThan(1000);
});

test('the embedded chat model answers through the SDK', async () => {
  test.setTimeout(90_000);
  const stream = await client.chat.completions.create({
    model: 'smollm2:135m',
    messages: [{ role: 'user', content: 'What is the capital of France?' }],
    max_tokens: 48,
    temperature: 0,
    stream: true,
  });
  const deltas: string[] = [];
  for await (const chunk of stream) {
    if (chunk.choices[0]?.delta?.content) deltas.push(chunk.choices[0].delta.content);
  }
  expect(deltas.length).toBeGreaterThan(1);
  expect(deltas.join('')).toContain('Paris');
  // Nothing went to the Ollama upstream.
  expect((await events()).filter((e) => e.kind === 'request')).toHaveLength(0);
});
