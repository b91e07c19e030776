// The archive in the agent web app: an agent finds a closed chat by a word from it, reads its
// snippet, opens its transcript, and edits and bans its customer in the details pane.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  BASE, OWNER_PASSWORD, USUAL_SETTINGS, agent, gql, launch, pageAccessibilityProblems, screenshot, shows,
  widget, widgetKey, widgetSettings, newPage as openPage,
} from './support.mjs';

let browser;
before(async () => {
  browser = await launch();
  await widgetSettings(USUAL_SETTINGS);
});
after(async () => {
  await browser?.close();
});

test('archive: the owner finds a closed chat by a word from it, opens it, and edits and bans the customer', async () => {
  const desk = await agent('Ari Archive');
  const { page, context } = await openPage(browser);
  try {
    // A customer's chat, answered and closed, before anyone opens the app.
    const key = await widgetKey();
    const session = await gql(
      'mutation($input: StartVisitorSessionInput!) { startVisitorSession(input: $input) { token customer { id } } }',
      { input: { widgetKey: key, name: 'Tilda Tandem', email: 'tilda@example.com', pageUrl: 'https://shop.test/' } },
    );
    const token = session.startVisitorSession.token;
    const started = await gql('mutation { startChat(input: {message: "The chain of my tandem bicycle snapped"}) { id } }',
      {}, token);
    const chatId = started.startChat.id;
    await desk.assignedChat();
    await desk.gql('mutation($c: ID!) { sendMessage(input: {chatId: $c, text: "A new chain is on its way."}) { id } }',
      { c: chatId });
    await desk.gql('mutation($c: ID!) { closeChat(chatId: $c) { id } }', { c: chatId });

    await page.goto(`${BASE}/app`);
    await shows(page.getByRole('heading', { name: 'Sign in to Switchboard' }), 'the sign-in form');
    await page.getByLabel('Email').fill('owner@example.com');
    await page.getByLabel('Password').fill(OWNER_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await shows(page.getByRole('switch', { name: 'Accept chats' }), 'the app signed in');
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Archive' }).click();
    await shows(page.getByRole('heading', { name: 'Archive', level: 2 }), 'the archive screen');

    // A malformed search says why; a word finds the closed chat with its snippet.
    const search = page.getByRole('searchbox', { name: 'Search the archive' });
    await search.fill('-tandem');
    await search.press('Enter');
    await shows(page.getByRole('alert').filter({ hasText: 'cannot only exclude' }), 'the malformed search explained');
    await search.fill('tandem');
    await search.press('Enter');
    const found = page.locator('.archive-results li').filter({ hasText: 'Tilda Tandem' });
    await shows(found, 'the closed chat found by a word from it');
    await shows(found.locator('mark', { hasText: /tandem/i }).first(), 'the word highlighted in the snippet');
    assert.match(await found.textContent(), /closed/);
    await screenshot(page, 'app-archive-1-search');
    assert.deepEqual(await pageAccessibilityProblems(page), [], 'axe: the archive');

    // Opened: its transcript, and the customer's profile beside it.
    await found.getByRole('link', { name: 'Tilda Tandem' }).click();
    const log = page.getByRole('log', { name: 'Conversation' });
    await shows(log.getByText('The chain of my tandem bicycle snapped'), 'the closed chat\'s transcript');
    await shows(log.getByText('A new chain is on its way.'), 'the agent\'s answer in it');
    const details = page.getByRole('complementary', { name: 'Customer details' });
    const profile = details.getByRole('region', { name: 'Profile' });
    await shows(profile, 'the customer profile');
    await profile.getByLabel('Phone').fill('+44 20 7946 0000');
    await profile.getByLabel('Note').fill('Rides a tandem');
    await profile.getByRole('button', { name: 'Save profile' }).click();
    await shows(page.getByText('Profile saved.'), 'the profile saved');
    const saved = await desk.gql('query($id: ID!) { customer(id: $id) { phone note } }',
      { id: session.startVisitorSession.customer.id });
    assert.deepEqual(saved.customer, { phone: '+44 20 7946 0000', note: 'Rides a tandem' });

    await profile.getByLabel('Reason').fill('Abusive messages');
    await profile.getByRole('button', { name: 'Ban the customer' }).click();
    await shows(profile.getByText(/Banned until .*: Abusive messages/), 'the ban on the profile');
    const refused = await gql('mutation { startChat(input: {message: "hello?"}) { id } }', {}, token).catch((err) => err);
    assert.equal(refused.code, 'BANNED');
    await screenshot(page, 'app-archive-2-profile');
    await profile.getByRole('button', { name: 'Lift the ban' }).click();
    await shows(profile.getByRole('button', { name: 'Ban the customer' }), 'the ban lifted');
  } finally {
    await context.close();
    await desk.leave();
  }
});

test('archive: a banned visitor\'s widget says chats are not available, and offers them again once lifted', async () => {
  const desk = await agent('Bo Ban');
  const owner = await gql('mutation($p: String!) { login(input: {email: "owner@example.com", password: $p}) { accessToken } }',
    { p: OWNER_PASSWORD });
  const ownerToken = owner.login.accessToken;
  const { page, context } = await openPage(browser);
  try {
    await page.goto(`${BASE}/demo`);
    const w = widget(page);
    const launcher = w.getByRole('button', { name: /Open the chat, We are online/ });
    await shows(launcher, 'the widget online', { timeout: 15000 });
    await launcher.click();
    await w.getByLabel('Name (optional)').fill('Troll Tom');
    await w.getByLabel('Message').fill('spam spam spam');
    await w.getByRole('button', { name: 'Start chat' }).click();
    const chatId = await desk.assignedChat();
    const data = await desk.gql('query($id: ID!) { chat(id: $id) { customer { id } } }', { id: chatId });
    await gql('mutation($id: ID!) { banCustomer(customerId: $id, input: {reason: "spam"}) { id } }',
      { id: data.chat.customer.id }, ownerToken);
    await desk.gql('mutation($c: ID!) { closeChat(chatId: $c) { id } }', { c: chatId });

    await page.reload();
    const again = w.getByRole('button', { name: /Open the chat/ });
    await shows(again, 'the widget after the ban', { timeout: 15000 });
    await again.click();
    // The closed chat is shown first; a new one is what the ban refuses.
    await w.getByRole('button', { name: 'Start a new chat' }).click();
    await shows(w.getByText('Chats are not available.'), 'the banned visitor told chats are not available', { timeout: 15000 });
    assert.equal(await w.getByRole('button', { name: 'Start chat' }).count(), 0, 'no chat offered');
    assert.equal(await w.getByLabel('Message').count(), 0, 'no offline form offered');
    await screenshot(page, 'app-archive-3-banned-widget');

    await gql('mutation($id: ID!) { unbanCustomer(customerId: $id) }', { id: data.chat.customer.id }, ownerToken);
    await page.reload();
    await w.getByRole('button', { name: /Open the chat/ }).click();
    await shows(w.getByRole('button', { name: 'Start chat' }), 'chats offered again once the ban is lifted', { timeout: 15000 });
  } finally {
    await context.close();
    await desk.leave();
  }
});
