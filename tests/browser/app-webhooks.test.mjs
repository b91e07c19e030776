// Webhooks in the agent web app: the owner adds an endpoint (an integration) pointing at a
// small HTTP receiver on 127.0.0.1, sees its secret once and a test event delivered in its log;
// an agent sends a chat to the integration from the chat's details, the receiver gets the
// transcript, and the app shows it delivered. (run.sh starts the server with
// SWITCHBOARD_ALLOW_PRIVATE_WEBHOOK_TARGETS=true, so a local receiver may be registered.)

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';

import {
  BASE, OWNER_PASSWORD, USUAL_SETTINGS, apiCustomer, gql, launch, owner, pageAccessibilityProblems, screenshot,
  shows, until, widgetKey, widgetSettings, newPage as openPage,
} from './support.mjs';

let browser;
before(async () => {
  browser = await launch();
  await widgetSettings(USUAL_SETTINGS);
});
after(async () => {
  await browser?.close();
});

/** A webhook receiver on 127.0.0.1 that answers 204 and keeps what it got. */
async function receiver() {
  const received = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => {
      body += chunk;
    });
    request.on('end', () => {
      received.push({ headers: request.headers, body: JSON.parse(body) });
      response.writeHead(204).end();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return { url: `http://127.0.0.1:${port}/hooks`, received, close: () => server.close() };
}

async function signIn(page, email, password) {
  await page.goto(`${BASE}/app/`);
  await shows(page.getByRole('heading', { name: 'Sign in to Switchboard' }), 'the sign-in form');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await shows(page.getByRole('switch', { name: 'Accept chats' }), `the app signed in as ${email}`);
}

test('webhooks: the owner adds an integration, and an agent sends a chat to it and sees it delivered', async () => {
  const hooks = await receiver();
  const name = `Test CRM ${Date.now() % 100000}`;
  const email = `hooks-agent-${Date.now()}@example.com`;
  await gql('mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }',
    { input: { email, name: 'Hana Hooks', password: 'agent-password-1', role: 'AGENT', groupIds: [] } }, await owner());
  const admin = await openPage(browser);
  const desk = await openPage(browser);
  let endpointId = null;
  try {
    // The owner adds the endpoint on the Webhooks screen; its secret shows once.
    await signIn(admin.page, 'owner@example.com', OWNER_PASSWORD);
    // The chat below is for the agent: the owner does not take chats meanwhile.
    await gql('mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }', {}, await owner());
    await admin.page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Webhooks' }).click();
    await shows(admin.page.getByRole('heading', { name: 'Webhooks', level: 2 }), 'the webhooks screen');
    const form = admin.page.getByRole('form', { name: 'New endpoint' });
    await form.getByLabel('URL').fill(hooks.url);
    await form.getByLabel('Description').fill(name);
    await form.getByRole('checkbox', { name: 'chat.closed' }).check();
    await form.getByRole('checkbox', { name: 'Integration: agents send chats to it' }).check();
    await admin.page.getByRole('button', { name: 'Add endpoint' }).click();
    const secret = admin.page.getByLabel('Signing secret');
    await shows(secret, 'the secret shown once');
    assert.match(await secret.textContent(), /^whsec_/);
    const endpoints = admin.page.getByRole('list', { name: 'Endpoints' });
    await shows(endpoints.getByText(name), 'the endpoint listed');
    endpointId = (await gql('{ webhookEndpoints { id description } }', {}, await owner()))
      .webhookEndpoints.find((e) => e.description === name).id;

    // A test event reaches the receiver and shows delivered in the log.
    await admin.page.getByRole('button', { name: `Send test to ${name}` }).click();
    await until(() => hooks.received.find((r) => r.body.type === 'webhook.test'), 'the test event at the receiver');
    const log = admin.page.getByRole('list', { name: `Deliveries of ${name}` });
    await shows(log.getByText(/webhook\.test: Delivered \(HTTP 204\)/), 'the test event delivered in the log');
    await screenshot(admin.page, 'app-webhooks-01-endpoint');
    assert.deepEqual(await pageAccessibilityProblems(admin.page), [], 'axe: the webhooks screen');

    // A plain agent has no Webhooks screen; in a chat, they send it to the integration.
    await signIn(desk.page, email, 'agent-password-1');
    await shows(desk.page.locator('#status-text', { hasText: 'Accepting chats' }), 'Hana accepting chats');
    const sections = desk.page.getByRole('navigation', { name: 'Sections' });
    assert.equal(await sections.getByRole('link', { name: 'Webhooks' }).count(), 0, 'webhooks are for admins');
    const customer = await apiCustomer(await widgetKey(), 'Wendy Webhook');
    await desk.page.getByRole('list', { name: 'My chats' }).getByRole('link', { name: /Wendy Webhook/ }).click();
    await shows(desk.page.getByRole('log', { name: 'Conversation' }).getByText('Hello from Wendy Webhook'), 'the chat open');
    const panel = desk.page.getByRole('region', { name: 'Send to integration' });
    await panel.getByRole('button', { name: `Send to ${name}` }).click();
    await shows(panel.getByText(new RegExp(`${name}: Delivered`)), 'the send shown delivered', { timeout: 15000 });
    const sent = await until(() => hooks.received.find((r) => r.body.type === 'chat.sent_to_integration'),
      'the chat at the receiver');
    assert.equal(sent.body.data.chat.id, customer.chat.id);
    assert.equal(sent.body.data.customer.name, 'Wendy Webhook');
    assert.ok(sent.body.data.transcript.some((m) => m.text === 'Hello from Wendy Webhook'), 'the transcript');
    assert.ok(sent.headers['webhook-signature'].startsWith('v1,'), 'signed');
    await screenshot(desk.page, 'app-webhooks-02-sent');
    assert.deepEqual(await pageAccessibilityProblems(desk.page), [], 'axe: a chat sent to an integration');
  } catch (err) {
    await screenshot(admin.page, 'app-webhooks-failed-admin').catch(() => {});
    await screenshot(desk.page, 'app-webhooks-failed-agent').catch(() => {});
    throw err;
  } finally {
    // Later scenarios close chats: nothing of theirs should go to a receiver that is gone.
    if (endpointId) {
      await gql('mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }', { id: endpointId }, await owner()).catch(() => {});
    }
    await gql('mutation { setRoutingStatus(status: ACCEPTING_CHATS) { id } }', {}, await owner()).catch(() => {});
    // Hana stops taking chats: her app may stay reachable (a push device, the grace period),
    // and later scenarios count on nobody but the owner's own being available.
    await gql('mutation($e: String!) { login(input: {email: $e, password: "agent-password-1"}) { accessToken } }', { e: email })
      .then((hana) => gql('mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }', {}, hana.login.accessToken))
      .catch(() => {});
    await admin.context.close();
    await desk.context.close();
    hooks.close();
  }
});
