// The chat widget as a customer uses it, in chromium, with agents driven through the API.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { copyFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import {
  BASE, OUTPUT, USUAL_SETTINGS, accessibilityProblems, agent, apiCustomer, flakyNetwork, gql, group,
  launch, owner, screenshot, until, widget, widgetFrame, widgetKey, widgetSettings,
  newPage as openPage,
} from './support.mjs';

let browser;
before(async () => {
  browser = await launch();
  await widgetSettings(USUAL_SETTINGS);
});
after(async () => {
  await browser?.close();
});

function newPage(options = {}) {
  return openPage(browser, options);
}

/** The conversation inside the widget (not the screen reader's announcements). */
function transcript(page, name = 'Conversation') {
  return widget(page).getByRole('list', { name });
}

/** Waits for the launcher to say whether someone is there. */
async function launcher(page, state = 'online') {
  const button = widget(page).getByRole('button', { name: new RegExp(`Open the chat, We are ${state}`) });
  await button.waitFor({ timeout: 15000 });
  return button;
}

async function chatRow(token, chatId) {
  const data = await gql(`query($id: ID!) { chat(id: $id) { status rating ratingComment assignee { id }
    customer { name externalId currentPage { url title } pageHistory { url } }
    events(first: 50) { items { text author kind } } } }`, { id: chatId }, token);
  return data.chat;
}

test('a customer chats with an agent: sneak peek, typing, reply, reload, close and rating', async () => {
  const ada = await agent('Ada Lovelace');
  const { context, page } = await newPage();
  try {
    await page.goto(`${BASE}/demo`);
    const button = await launcher(page, 'online');
    await screenshot(page, '01-button-online');
    await button.click();
    const w = widget(page);
    await w.getByLabel('Name (optional)').fill('Sam Customer');
    await w.getByLabel('Email (optional)').fill('sam@customer.test');
    await w.getByLabel('Message').fill('Do you ship to Norway?');
    await screenshot(page, '02-pre-chat');
    await w.getByRole('button', { name: 'Start chat' }).click();

    const chatId = await ada.assignedChat();
    const received = await chatRow(ada.token, chatId);
    assert.equal(received.customer.name, 'Sam Customer');
    assert.ok(received.events.items.some((m) => m.author === 'CUSTOMER' && m.text === 'Do you ship to Norway?'));

    // The customer types; the agent reads the draft before it is sent.
    const composer = w.getByRole('textbox', { name: 'Message' });
    await composer.pressSequentially('Also, do you take invoices', { delay: 20 });
    await ada.event((e) => e.__typename === 'TypingChanged' && e.author === 'CUSTOMER' &&
      (e.draft || '').includes('Also, do you take'), 'the sneak peek');

    await ada.gql('mutation($id: ID!) { setTyping(input: {chatId: $id, isTyping: true}) }', { id: chatId });
    await w.getByText('Ada Lovelace is typing…').waitFor();
    await ada.gql('mutation($id: ID!) { sendMessage(input: {chatId: $id, text: "Yes, we do. Details: https://shop.test/shipping"}) { id } }',
      { id: chatId });
    await transcript(page).getByText('Yes, we do. Details:').waitFor();
    // Screen readers hear it through the live region.
    await w.locator('[aria-live="polite"]', { hasText: 'Ada Lovelace: Yes, we do.' }).waitFor({ state: 'attached' });
    const link = w.getByRole('link', { name: 'https://shop.test/shipping' });
    assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
    assert.equal(await link.getAttribute('target'), '_blank');
    await w.getByText('Ada Lovelace is typing…').waitFor({ state: 'hidden' });

    await composer.press('Enter');
    await ada.event((e) => e.__typename === 'MessageAdded' && e.message.text === 'Also, do you take invoices',
      'the second message at the agent');
    // Sent: no longer shown as pending.
    await transcript(page).locator('[aria-busy="true"]').waitFor({ state: 'detached' });
    await screenshot(page, '03-in-chat');
    copyFileSync(join(OUTPUT, '03-in-chat.png'), join(OUTPUT, 'widget.png'));
    assert.deepEqual(await accessibilityProblems(page), [], 'axe: the open chat');

    // A reload shows the same transcript, once.
    await page.reload();
    await launcher(page, 'online');
    await widget(page).getByRole('button', { name: /Open the chat/ }).click();
    await transcript(page).getByText('Yes, we do. Details:').waitFor();
    assert.equal(await transcript(page).getByText('Do you ship to Norway?').count(), 1);
    assert.equal(await transcript(page).getByText('Also, do you take invoices').count(), 1);

    await w.getByRole('button', { name: 'End chat' }).click();
    await w.getByText('How was this chat?').waitFor();
    await w.getByRole('button', { name: /Good/ }).click();
    await w.getByLabel('Comment (optional)').fill('Quick and friendly');
    await screenshot(page, '04-rating');
    assert.deepEqual(await accessibilityProblems(page), [], 'axe: the rating');
    await w.getByRole('button', { name: 'Send rating' }).click();
    await w.getByText('Thank you for your feedback!').waitFor();
    const rated = await chatRow(ada.token, chatId);
    assert.equal(rated.status, 'CLOSED');
    assert.equal(rated.rating, 'GOOD');
    assert.equal(rated.ratingComment, 'Quick and friendly');

    // And a new chat afterwards.
    await w.getByRole('button', { name: 'Start a new chat' }).click();
    await w.getByRole('button', { name: 'Start chat' }).waitFor();
  } finally {
    await context.close();
    await ada.leave();
  }
});

test('with nobody available the customer leaves an offline message that reaches the agents', async () => {
  // Nobody may be available: earlier scenarios' agents (whose apps may still be reachable
  // through a push device or the grace period) stop taking chats, and so does the owner, for
  // the rest of the suite (the scenarios after this one bring their own agents). Their open
  // chats stay theirs.
  const boss = await owner();
  const { agents } = await gql('{ agents { email role isActive } }', {}, boss);
  for (const a of agents.filter((a) => a.isActive && a.role !== 'OWNER')) {
    const { login } = await gql(
      'mutation($e: String!) { login(input: {email: $e, password: "agent-password-1"}) { accessToken } }',
      { e: a.email },
    );
    await gql('mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }', {}, login.accessToken);
  }
  await gql('mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }', {}, boss);
  const { context, page } = await newPage();
  try {
    await page.goto(`${BASE}/demo`);
    const button = await launcher(page, 'offline');
    await button.click();
    const w = widget(page);
    await w.getByText('Nobody is available right now').waitFor();
    await w.getByLabel('Name').fill('Olga Offline');
    await w.getByLabel('Email').fill('olga@customer.test');
    await w.getByLabel('Message').fill('Please call me back about a wholesale order.');
    await screenshot(page, '05-offline-form');
    assert.deepEqual(await accessibilityProblems(page), [], 'axe: the offline form');
    await w.getByRole('button', { name: 'Send message' }).click();
    await w.getByText('Thank you! Your message is with our team').waitFor();
    const data = await gql('{ offlineMessages { name email text } }', {}, await owner());
    assert.ok(data.offlineMessages.some((m) => m.name === 'Olga Offline' && m.email === 'olga@customer.test' &&
      m.text === 'Please call me back about a wholesale order.'), JSON.stringify(data.offlineMessages));
  } finally {
    await context.close();
  }
});

test('a queued customer sees their place in the queue move up', async () => {
  const bea = await agent('Bea Busy', { chatLimit: 1 });
  const key = await widgetKey();
  const { context, page } = await newPage();
  try {
    const first = await apiCustomer(key, 'First Customer');
    assert.equal(first.chat.status, 'ACTIVE');
    const second = await apiCustomer(key, 'Second Customer');
    assert.equal(second.chat.status, 'QUEUED');

    await page.goto(`${BASE}/demo`);
    await (await launcher(page, 'online')).click();
    const w = widget(page);
    await w.getByLabel('Message').fill('Is anyone there?');
    await w.getByRole('button', { name: 'Start chat' }).click();
    await w.getByText('You are number 2 in the queue.').waitFor();
    await w.getByText(/Estimated wait: /).waitFor();
    await screenshot(page, '06-queued');

    await bea.gql('mutation($id: ID!) { closeChat(chatId: $id) { id } }', { id: first.chat.id });
    await w.getByText('You are number 1 in the queue.').waitFor();

    await bea.gql('mutation($id: ID!) { closeChat(chatId: $id) { id } }', { id: second.chat.id });
    await w.getByText(/You are number/).waitFor({ state: 'hidden' });
    await w.getByText('Bea Busy', { exact: true }).waitFor();
  } finally {
    await context.close();
    await bea.leave();
  }
});

test('page views, single-page navigation and full page loads, become the customer\'s current page', async () => {
  const dee = await agent('Dee Navigator');
  const { context, page } = await newPage();
  try {
    await page.goto(`${BASE}/demo`);
    await (await launcher(page, 'online')).click();
    const w = widget(page);
    await w.getByLabel('Message').fill('Where do I see my cart?');
    await w.getByRole('button', { name: 'Start chat' }).click();
    const chatId = await dee.assignedChat();
    assert.match((await chatRow(dee.token, chatId)).customer.currentPage.url, /\/demo$/);

    await page.getByRole('link', { name: 'Cart' }).click();
    await until(async () => {
      const current = (await chatRow(dee.token, chatId)).customer.currentPage;
      return current.url.endsWith('/demo?view=cart') && current.title === 'Harbour Coffee · Cart';
    }, 'the cart as the current page');

    await page.getByRole('link', { name: 'About us' }).click();
    await page.waitForURL(/\/demo\/about$/);
    const customer = await until(async () => {
      const row = await chatRow(dee.token, chatId);
      return row.customer.currentPage.url.endsWith('/demo/about') && row.customer;
    }, 'the about page as the current page');
    const history = customer.pageHistory.map((p) => new URL(p.url).pathname + new URL(p.url).search);
    assert.deepEqual(history.slice(0, 3), ['/demo/about', '/demo?view=cart', '/demo']);

    // The conversation came along to the new page.
    await (await launcher(page, 'online')).click();
    await transcript(page).getByText('Where do I see my cart?').waitFor();
  } finally {
    await context.close();
    await dee.leave();
  }
});

test('the widget works on a page of another origin, in German, with the host API', async () => {
  const eve = await agent('Eva Schmidt');
  const key = await widgetKey();
  const { identitySecret } = await gql('{ identitySecret }', {}, await owner());
  const userId = `shop-user-${Date.now()}`;
  const signature = createHmac('sha256', identitySecret).update(userId).digest('hex');
  const host = createServer((request, response) => {
    response.setHeader('Content-Type', 'text/html; charset=utf-8');
    response.end(`<!doctype html><html lang="de"><head><title>Anderer Shop</title><link rel="icon" href="data:,"></head><body>
      <h1>Ein anderer Shop</h1>
      <script>
        window.Switchboard = { q: [] };
        Switchboard.q.push(['identify', { name: 'Jonas Host', email: 'jonas@host.test',
          userId: '${userId}', signature: '${signature}' }]);
        Switchboard.q.push(['on', 'chat_started', function (e) { window.started = e.chatId; }]);
        Switchboard.q.push(['on', 'message_received', function (e) {
          window.received = (window.received || []).concat(e.text);
        }]);
      </script>
      <script src="${BASE}/widget.js" data-widget-key="${key}" data-locale="de" async></script>
    </body></html>`);
  });
  await new Promise((resolve) => host.listen(0, '127.0.0.1', resolve));
  // "localhost" against the server's "127.0.0.1": another origin and another site.
  const hostUrl = `http://localhost:${host.address().port}/`;
  // The organization allows its widget on that site only.
  await widgetSettings({ allowedOrigins: [new URL(hostUrl).origin] });
  const { context, page } = await newPage();
  try {
    await page.goto(hostUrl);
    const w = widget(page);
    await w.getByRole('button', { name: /Chat öffnen, Wir sind online/ }).waitFor({ timeout: 15000 });
    await page.evaluate(() => window.Switchboard.open());
    await w.getByLabel('Nachricht').fill('Hallo, liefern Sie nach Wien?');
    await w.getByRole('button', { name: 'Chat starten' }).click();
    const chatId = await eve.assignedChat();
    assert.equal(await until(() => page.evaluate(() => window.started), 'chat_started on the host'), chatId);
    const row = await chatRow(eve.token, chatId);
    assert.equal(row.customer.name, 'Jonas Host');
    assert.equal(row.customer.externalId, userId, 'the signed identity');
    assert.equal(row.customer.currentPage.url, hostUrl);

    await eve.gql('mutation($id: ID!) { sendMessage(input: {chatId: $id, text: "Ja, nach ganz Österreich."}) { id } }',
      { id: chatId });
    await transcript(page, 'Unterhaltung').getByText('Ja, nach ganz Österreich.').waitFor();
    assert.deepEqual(await until(() => page.evaluate(() => window.received), 'message_received on the host'),
      ['Ja, nach ganz Österreich.']);
    await screenshot(page, '07-other-origin-de');

    // The conversation survives a reload here too, even where the browser denies the frame
    // storage of its own on another site.
    await page.reload();
    await w.getByRole('button', { name: /Chat öffnen, Wir sind online/ }).click();
    await transcript(page, 'Unterhaltung').getByText('Ja, nach ganz Österreich.').waitFor();
    assert.equal(await transcript(page, 'Unterhaltung').getByText('Hallo, liefern Sie nach Wien?').count(), 1);

    await page.evaluate(() => window.Switchboard.close());
    await w.getByRole('button', { name: /Chat öffnen/ }).waitFor();
    const frameBox = await page.locator('iframe[title="Chat"]').boundingBox();
    assert.ok(frameBox.width < 200 && frameBox.height < 200, `the closed frame is small: ${JSON.stringify(frameBox)}`);

    // Unread messages while closed: a badge, and the host tab's title flashes while hidden.
    await page.evaluate(() => {
      Object.defineProperty(document, 'hidden', { value: true, configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await eve.gql('mutation($id: ID!) { sendMessage(input: {chatId: $id, text: "Noch Fragen?"}) { id } }', { id: chatId });
    await w.getByRole('button', { name: /1 ungelesen/ }).waitFor();
    await until(() => page.evaluate(() => document.title === '(1) Neue Nachricht'), 'the flashing title');
    await page.evaluate(() => {
      Object.defineProperty(document, 'hidden', { value: false, configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    assert.equal(await page.evaluate(() => document.title), 'Anderer Shop');
    await screenshot(page, '08-unread-badge');
  } finally {
    await widgetSettings({ allowedOrigins: [] });
    await context.close();
    host.close();
    await eve.leave();
  }
});

test('data-group sends the chat to that department, named by its name', async () => {
  const stamp = Date.now();
  const sales = await group(`Sales ${stamp}`);
  await group(`Returns ${stamp}`);
  const lee = await agent('Lee Sales', { groupIds: [sales] });
  const key = await widgetKey();
  const host = createServer((request, response) => {
    const department = new URL(request.url, 'http://host').searchParams.get('group');
    response.setHeader('Content-Type', 'text/html; charset=utf-8');
    response.end(`<!doctype html><html lang="en"><head><title>Departments</title><link rel="icon" href="data:,"></head>
      <body><h1>${department}</h1>
      <script src="${BASE}/widget.js" data-widget-key="${key}" data-group="${department}" async></script>
    </body></html>`);
  });
  await new Promise((resolve) => host.listen(0, '127.0.0.1', resolve));
  const hostUrl = `http://localhost:${host.address().port}/`;
  const { context, page } = await newPage();
  try {
    // Nobody of Returns is there, whoever else is.
    await page.goto(`${hostUrl}?group=${encodeURIComponent(`Returns ${stamp}`)}`);
    await launcher(page, 'offline');

    await page.goto(`${hostUrl}?group=${encodeURIComponent(`Sales ${stamp}`)}`);
    await (await launcher(page, 'online')).click();
    await widget(page).getByLabel('Message').fill('A question for sales');
    await widget(page).getByRole('button', { name: 'Start chat' }).click();
    const chatId = await lee.assignedChat();
    const data = await lee.gql('query($id: ID!) { chat(id: $id) { group { id } } }', { id: chatId });
    assert.equal(data.chat.group.id, sales);
  } finally {
    await context.close();
    host.close();
    await lee.leave();
  }
});

test('the organization sets colour, position, words and pre-chat fields without a deploy', async () => {
  const jo = await agent('Jo Colour');
  await widgetSettings({
    color: '#0f766e', position: 'LEFT', title: 'Talk to Harbour', greeting: 'Questions about beans?',
    preChatName: 'REQUIRED', preChatEmail: 'HIDDEN',
  });
  const { context, page } = await newPage();
  try {
    await page.goto(`${BASE}/demo`);
    const w = widget(page);
    await w.getByRole('button', { name: /Open the chat/ }).click();
    await w.getByRole('heading', { name: 'Talk to Harbour' }).waitFor();
    await w.getByText('Questions about beans?').waitFor();
    const name = w.getByLabel('Name', { exact: true });
    assert.equal(await name.getAttribute('required'), '');
    assert.equal(await w.getByLabel(/Email/).count(), 0);
    const colour = await w.getByRole('button', { name: 'Start chat' })
      .evaluate((button) => getComputedStyle(button).backgroundColor);
    assert.equal(colour, 'rgb(15, 118, 110)');
    const box = await page.locator('iframe[title="Chat"]').boundingBox();
    assert.equal(box.x, 0, 'the widget sits on the left');
    await screenshot(page, '10-configured');
  } finally {
    await context.close();
    await jo.leave();
    await widgetSettings(USUAL_SETTINGS);
  }
});

test('a site the organization does not allow gets no widget', async () => {
  await widgetSettings({ allowedOrigins: ['https://shop.example'] });
  const { context, page } = await newPage();
  try {
    // The demo page is on the server's own origin, which is not on the list.
    const warned = new Promise((resolve) => page.on('console', (message) => {
      if (message.type() === 'warning' && message.text().includes('Switchboard: no chat widget here')) resolve();
    }));
    await page.goto(`${BASE}/demo`);
    await warned;
    await page.locator('iframe[title="Chat"]').waitFor({ state: 'hidden' });
  } finally {
    await context.close();
    await widgetSettings(USUAL_SETTINGS);
  }
});

test('on a small screen the window is full-screen, and keyboard users can open and close it', async () => {
  const fay = await agent('Fay Mobile');
  const { context, page } = await newPage({ viewport: { width: 375, height: 667 }, isMobile: true, hasTouch: true });
  try {
    await page.goto(`${BASE}/demo`);
    const button = await launcher(page, 'online');
    await button.focus();
    await page.keyboard.press('Enter');
    const w = widget(page);
    await w.getByLabel('Message').waitFor();
    const box = await page.locator('iframe[title="Chat"]').boundingBox();
    assert.deepEqual([box.x, box.y, box.width, box.height], [0, 0, 375, 667]);
    // Focus moved into the window.
    const frame = await widgetFrame(page);
    assert.equal(await frame.evaluate(() => document.activeElement?.closest('form') !== null), true);
    await screenshot(page, '09-small-screen');
    assert.deepEqual(await accessibilityProblems(page), [], 'axe: the pre-chat form');
    await page.keyboard.press('Escape');
    await w.getByLabel('Message').waitFor({ state: 'hidden' });
    // Focus went back to the button that opened it.
    assert.equal(await frame.evaluate(() => document.activeElement?.getAttribute('aria-expanded')), 'false');
  } finally {
    await context.close();
    await fay.leave();
  }
});

test('two tabs show one conversation', async () => {
  const gus = await agent('Gus Tabs');
  const { context, page } = await newPage();
  try {
    await page.goto(`${BASE}/demo`);
    const second = await context.newPage();
    await second.goto(`${BASE}/demo/about`);
    await (await launcher(page, 'online')).click();
    const w = widget(page);
    await w.getByLabel('Message').fill('Hello from the first tab');
    await w.getByRole('button', { name: 'Start chat' }).click();
    const chatId = await gus.assignedChat();
    await gus.gql('mutation($id: ID!) { sendMessage(input: {chatId: $id, text: "Seen in both tabs"}) { id } }', { id: chatId });
    await transcript(page).getByText('Seen in both tabs').waitFor();
    await (await launcher(second, 'online')).click();
    await transcript(second).getByText('Hello from the first tab').waitFor();
    await transcript(second).getByText('Seen in both tabs').waitFor();
    assert.equal(await transcript(second).getByText('Seen in both tabs').count(), 1);
  } finally {
    await context.close();
    await gus.leave();
  }
});

test('after the network drops the widget reconnects by itself and misses nothing', async () => {
  const ivy = await agent('Ivy Reconnect');
  const network = await flakyNetwork();
  const { context, page } = await newPage();
  try {
    await page.goto(`${network.url}/demo`);
    await (await launcher(page, 'online')).click();
    const w = widget(page);
    await w.getByLabel('Message').fill('Before the tunnel');
    await w.getByRole('button', { name: 'Start chat' }).click();
    const chatId = await ivy.assignedChat();
    await ivy.gql('mutation($id: ID!) { sendMessage(input: {chatId: $id, text: "First answer"}) { id } }', { id: chatId });
    await transcript(page).getByText('First answer').waitFor();

    network.cut();
    await w.getByText('Connection lost. Reconnecting…').waitFor({ timeout: 15000 });
    await screenshot(page, '11-reconnecting');
    await ivy.gql('mutation($id: ID!) { sendMessage(input: {chatId: $id, text: "Sent while you were away"}) { id } }',
      { id: chatId });
    network.restore();

    await transcript(page).getByText('Sent while you were away').waitFor({ timeout: 20000 });
    await w.getByText('Connection lost. Reconnecting…').waitFor({ state: 'hidden' });
    assert.equal(await transcript(page).getByText('First answer').count(), 1);
    assert.equal(await transcript(page).getByText('Sent while you were away').count(), 1);
  } finally {
    await context.close();
    network.close();
    await ivy.leave();
  }
});

test('a greeting from an agent is shown, answered, and becomes a chat with that agent', async () => {
    const hal = await agent('Hal Greeter');
    const marker = `greet${Date.now()}`;
    const { context, page } = await newPage();
    try {
      await page.goto(`${BASE}/demo?${marker}`);
      await launcher(page, 'online');
      const customerId = await until(async () => {
        const data = await hal.gql('{ visitorsOnSite { customer { id } currentPage { url } } }');
        return data.visitorsOnSite.find((v) => v.currentPage?.url.includes(marker))?.customer.id;
      }, 'the visitor on the site');
      await hal.gql('mutation($input: SendGreetingInput!) { sendGreeting(input: $input) { id } }',
        { input: { customerId, text: 'Hi! Can I help you choose a roast?' } });
      const w = widget(page);
      await w.getByRole('status').filter({ hasText: 'Hi! Can I help you choose a roast?' }).waitFor();
      await screenshot(page, '12-greeting');
      assert.deepEqual(await accessibilityProblems(page), [], 'axe: the greeting');
      await w.getByRole('button', { name: 'Reply' }).click();
      await w.getByLabel('Message').fill('Yes please, something fruity.');
      await w.getByRole('button', { name: 'Start chat' }).click();
      const chatId = await hal.assignedChat();
      const row = await chatRow(hal.token, chatId);
      assert.equal(row.assignee.id, hal.id);
      const messages = row.events.items.filter((m) => m.kind === 'MESSAGE');
      assert.deepEqual(messages.slice(0, 2).map((m) => [m.author, m.text]), [
        ['AGENT', 'Hi! Can I help you choose a roast?'],
        ['CUSTOMER', 'Yes please, something fruity.'],
      ]);
    } finally {
      await context.close();
      await hal.leave();
    }
  });

test('a greeting survives a reload until the visitor dismisses it', async () => {
    const kim = await agent('Kim Greeter');
    const marker = `dismiss${Date.now()}`;
    const { context, page } = await newPage();
    try {
      await page.goto(`${BASE}/demo?${marker}`);
      await launcher(page, 'online');
      const onSite = async () => {
        const data = await kim.gql('{ visitorsOnSite { customer { id } currentPage { url } greeting { id dismissedAt } } }');
        return data.visitorsOnSite.find((v) => v.currentPage?.url.includes(marker));
      };
      const customerId = (await until(onSite, 'the visitor on the site')).customer.id;
      await kim.gql('mutation($input: SendGreetingInput!) { sendGreeting(input: $input) { id } }',
        { input: { customerId, text: 'Looking for a gift?' } });
      const bubble = widget(page).getByRole('status').filter({ hasText: 'Looking for a gift?' });
      await bubble.waitFor();
      await widget(page).getByRole('button', { name: /1 unread/ }).waitFor();

      await page.reload();
      await bubble.waitFor();
      await bubble.getByRole('button', { name: 'Dismiss' }).click();
      await bubble.waitFor({ state: 'hidden' });
      await until(async () => (await onSite())?.greeting?.dismissedAt || (await onSite())?.greeting === null,
        'the greeting dismissed');

      await page.reload();
      await launcher(page, 'online');
      await page.waitForTimeout(500);
      assert.equal(await bubble.isVisible(), false, 'a dismissed greeting stays away');
    } finally {
      await context.close();
      await kim.leave();
    }
  });
