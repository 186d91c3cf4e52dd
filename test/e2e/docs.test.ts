import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { LocalStack } from '../../scripts/local/stack.ts';
import { startTestStack } from '../helpers/stack.ts';
import { PREDICT_EXAMPLE } from '#api/openapi';

// Swagger UI at /docs in a real browser (Debian's chromium, installed by .ci/run), against the stack
// as `npm start` runs it.
let stack: LocalStack;
let browser: Browser;
let page: Page;
/** Every URL the page asked for outside the stack: /docs must work offline. */
const elsewhere: string[] = [];

/**
 * Starts /predict's worker before the browser calls it. A first request compiles the function and
 * loads the model; on two cores shared with other work that can pass the 10 s function timeout, and
 * this file tests Swagger UI, not cold starts (test/e2e/local-stack.test.ts calls /predict cold).
 */
async function warmUpPredict() {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const response = await fetch(`${stack.url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(PREDICT_EXAMPLE),
    });
    if (response.ok || Date.now() > deadline) return;
  }
}

beforeAll(async () => {
  [stack, browser] = await Promise.all([
    startTestStack(),
    chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    }),
  ]);
  page = await browser.newPage();
  page.on('request', (request) => {
    if (!request.url().startsWith(`${stack.url}/`)) elsewhere.push(request.url());
  });
  // Each function's first request starts its worker (TypeScript compiled, the model loaded): on two
  // busy cores that takes seconds, longer than Playwright's default wait.
  page.setDefaultTimeout(90_000);
  await warmUpPredict();
  await page.goto(`${stack.url}/docs`);
  await page.locator('.opblock').first().waitFor();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

it('lists every route of the OpenAPI document', async () => {
  const document = (await (await fetch(`${stack.url}/openapi.json`)).json()) as {
    paths: Record<string, Record<string, unknown>>;
  };
  const documented = Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
  );
  const listed = await page
    .locator('.opblock')
    .evaluateAll((blocks) =>
      blocks.map(
        (block) =>
          `${block.querySelector('.opblock-summary-method')?.textContent} ${block.querySelector('.opblock-summary-path')?.getAttribute('data-path')}`,
      ),
    );

  expect(listed.sort()).toEqual(documented.sort());
  expect(elsewhere).toEqual([]);
});

it('runs "Try it out" on POST /predict with the example body and shows the prediction', {
  timeout: 120_000,
}, async () => {
  const operation = page.locator('#operations-default-post_predict');
  await operation.locator('.opblock-summary').click();
  await operation.getByRole('button', { name: 'Try it out' }).click();
  await operation.getByRole('button', { name: 'Execute' }).click();

  const response = operation.locator('.live-responses-table .response');
  await response.waitFor();
  expect((await response.locator('.response-col_status').textContent())?.trim()).toBe('200');
  const body = JSON.parse(
    (await response.locator('.response-col_description .highlight-code .microlight').textContent()) ?? '',
  );
  // The document's example (the README's), scored by the sample model.
  expect(body).toMatchObject({ predicted_iq: 82.5, classification: 'Bom', portfolio_id: 42, model_version: '0' });
});

it('offers a file picker for the model upload', async () => {
  const operation = page.locator('#operations-default-post_model_upload');
  await operation.locator('.opblock-summary').click();
  await operation.getByRole('button', { name: 'Try it out' }).click();

  await expect(operation.locator('input[type=file]').count()).resolves.toBe(1);
});
