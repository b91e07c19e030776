// The archive in the agent web app: an agent finds a closed chat by a word from it, reads its
// snippet, opens its transcript, and edits and bans its customer in the details pane.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  BASE, OWNER_PASSWORD, USUAL_SETTINGS, agent, gql, launch, pageAccessibilityProblems, screenshot, shows,
  widgetKey, widgetSettings, newPage as openPage,
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
