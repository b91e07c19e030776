// The agent web app at /app as agents use it, in chromium: the owner and a second agent each in
// a browser context of their own, customers through the widget on the demo page or the API.

import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import {
  BASE, OUTPUT, OWNER_PASSWORD, USUAL_SETTINGS, apiCustomer, flakyNetwork, gql, group, launch, owner, until,
  pageAccessibilityProblems, screenshot, shows, widget, widgetKey, widgetSettings,
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

let agents = 0;
/** A new agent made by the owner through the API; their email. */
async function createAgent(name, { role = 'AGENT', groupIds = [] } = {}) {
  const email = `app-agent${++agents}-${Date.now()}@example.com`;
  await gql('mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }',
    { input: { email, name, password: 'agent-password-1', role, groupIds } }, await owner());
  return email;
}

/** Stops `email` from taking chats, through the API, so later scenarios route nothing to them. */
async function stopAccepting(email, password = 'agent-password-1') {
  const data = await gql('mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken } }',
    { e: email, p: password });
  await gql('mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }', {}, data.login.accessToken);
}

/** Opens the app and signs in; returns once the status switch is shown. */
async function signIn(page, email, password) {
  await page.goto(`${BASE}/app`);
  assert.equal(new URL(page.url()).pathname, '/app/', '/app redirects to /app/');
  await shows(page.getByRole('heading', { name: 'Sign in to Switchboard' }), 'the sign-in form');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await shows(page.getByRole('switch', { name: 'Accept chats' }), `the app signed in as ${email}`);
}

/** Waits for the status line to read `text`. */
async function status(page, text, what, options = {}) {
  await shows(page.locator('#status-text', { hasText: text }), what, options);
}

function conversation(page) {
  return page.getByRole('log', { name: 'Conversation' });
}

test('an agent takes a chat from the widget, replies, and transfers it to a second agent who closes it', async () => {
  const billing = await group('Billing');
  const beaEmail = await createAgent('Bea Second', { groupIds: [billing] });
  const desk = await newPage();
  const bea = await newPage();
  const customer = await newPage();
  await desk.context.grantPermissions(['notifications'], { origin: BASE });
  const { page } = desk;
  try {
    await page.goto(`${BASE}/app/`);
    await shows(page.getByRole('heading', { name: 'Sign in to Switchboard' }), 'the sign-in form');
    await screenshot(page, 'app-01-sign-in');
    assert.deepEqual(await pageAccessibilityProblems(page), [], 'axe: sign-in');

    // A wrong password is said so, and nothing else happens.
    await page.getByLabel('Email').fill('owner@example.com');
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await shows(page.getByRole('alert').filter({ hasText: 'The email or the password is not right.' }), 'the refusal');

    await signIn(page, 'owner@example.com', OWNER_PASSWORD);
    // The owner was switched to Don't accept by the suite: the switch says so.
    const accept = page.getByRole('switch', { name: 'Accept chats' });
    await status(page, 'Don\'t accept chats', 'the status "Don\'t accept chats"');
    assert.equal(await accept.getAttribute('aria-checked'), 'false');
    await accept.click();
    await status(page, 'Accepting chats', 'the status "Accepting chats" (reachable through the open app)');
    assert.equal(await accept.getAttribute('aria-checked'), 'true');
    await shows(page.getByText('No chats yet.'), 'an empty list of my chats');
    assert.deepEqual(await pageAccessibilityProblems(page), [], 'axe: the chat list');

    // Web Push: the app asks the server for its key; where pushes cannot be had it says so.
    const askedForKey = page.waitForRequest((request) => request.url().endsWith('/graphql') &&
      (request.postData() || '').includes('webPushPublicKey'), { timeout: 10000 })
      .catch(() => assert.fail('expected the app to ask the server for its Web Push key'));
    await page.getByRole('button', { name: 'Notify me when the app is closed' }).click();
    await askedForKey;
    await shows(page.locator('#notice', { hasText: /notified when the app is closed|not available/ }),
      'an answer to "Notify me when the app is closed"');
    await page.locator('#notice').getByRole('button', { name: 'Dismiss' }).click();

    // A customer starts a chat through the widget on the demo shop.
    await customer.page.goto(`${BASE}/demo`);
    const w = widget(customer.page);
    const launcher = w.getByRole('button', { name: /Open the chat, We are online/ });
    await shows(launcher, 'the widget online', { timeout: 15000 });
    await launcher.click();
    await w.getByLabel('Name (optional)').fill('Sam Customer');
    await w.getByLabel('Email (optional)').fill('sam@customer.test');
    await w.getByLabel('Message').fill('Do you ship to Norway?');
    await w.getByRole('button', { name: 'Start chat' }).click();

    // It arrives: in the list, announced, counted in the title.
    const row = page.getByRole('list', { name: 'My chats' }).getByRole('link', { name: /Sam Customer/ });
    await shows(row, 'the new chat in My chats');
    await shows(page.locator('#announcer', { hasText: 'New chat from Sam Customer.' }), 'the announcement of the chat',
      { state: 'attached' });
    await shows(row.getByText('Do you ship to Norway?'), 'the last message in the row');
    await row.click();
    assert.match(page.url(), /#\/chats\//);
    await shows(page.getByRole('heading', { name: 'Sam Customer', level: 2 }), 'the chat view');
    await shows(conversation(page).getByText('Do you ship to Norway?'), 'the first message in the transcript');
    assert.equal(await page.title(), 'Switchboard', 'nothing unread once the chat is open');

    // The customer's details: email and the page they are on.
    const details = page.getByRole('complementary', { name: 'Customer details' });
    await shows(details.getByText('sam@customer.test'), 'the customer\'s email');
    await shows(details.getByRole('link', { name: 'Harbour Coffee · Shop' }).first(), 'the customer\'s current page');

    // The sneak peek: what the customer is typing, before they send it.
    const composer = w.getByRole('textbox', { name: 'Message' });
    await composer.pressSequentially('Also, do you take invoices', { delay: 20 });
    await shows(page.getByText(/Sam Customer is typing/), 'the customer typing');
    await shows(page.getByText(/: Also, do you take/), 'the sneak peek of the draft');

    // The agent replies; the customer sees the agent typing, then the reply.
    const reply = page.getByRole('combobox', { name: 'Reply' });
    await reply.pressSequentially('Yes, we ship to Norway', { delay: 10 });
    await shows(w.getByText(/Owner.* is typing…|is typing…/), 'the agent typing, at the customer');
    await reply.press('Enter');
    await shows(conversation(page).getByText('Yes, we ship to Norway'), 'the reply in the agent\'s transcript');
    await shows(w.getByRole('list', { name: 'Conversation' }).getByText('Yes, we ship to Norway'), 'the reply at the customer');
    await composer.press('Enter');
    await shows(conversation(page).getByText('Also, do you take invoices'), 'the customer\'s second message');
    await screenshot(page, 'app-02-chat');
    // The README's picture (docs/app.png) is copied from here by hand, so a run leaves the tree clean.
    copyFileSync(join(OUTPUT, 'app-02-chat.png'), join(OUTPUT, 'app.png'));
    assert.deepEqual(await pageAccessibilityProblems(page), [], 'axe: the chat view');

    // On a desk another list opens beside the chat, and My chats leads back to it.
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: /^Visitors/ }).click();
    await shows(page.getByRole('heading', { name: 'Visitors', level: 2 }), 'the visitors beside the chat');
    await shows(conversation(page).getByText('Also, do you take invoices'), 'the chat still open beside the visitors');
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: /^My chats/ }).click();
    assert.match(page.url(), /#\/chats\/[^/]+$/, 'My chats names the open chat');
    await shows(conversation(page).getByText('Also, do you take invoices'), 'the chat still open');

    // The second agent signs in elsewhere (their first login: they accept chats).
    await signIn(bea.page, beaEmail, 'agent-password-1');
    await status(bea.page, 'Accepting chats', 'the second agent accepting chats');

    // Transfer: Escape closes the dialog and gives the focus back.
    const transfer = page.getByRole('button', { name: 'Transfer' });
    await transfer.click();
    const dialog = page.getByRole('dialog', { name: 'Transfer the chat' });
    await shows(dialog, 'the transfer dialog');
    await shows(dialog.getByText('Billing'), 'the groups to transfer to');
    await page.keyboard.press('Escape');
    await shows(dialog, 'the transfer dialog closed by Escape', { state: 'hidden' });
    assert.equal(await transfer.evaluate((button) => button === document.activeElement), true,
      'the focus back on Transfer');
    await transfer.click();
    await shows(dialog.getByRole('radio', { name: /Bea Second/ }), 'the second agent as a candidate');
    await screenshot(page, 'app-03-transfer');
    await dialog.getByRole('radio', { name: /Bea Second/ }).check();
    await dialog.getByLabel('Note for the next agent').fill('Asks about invoices for Norway');
    await dialog.getByRole('button', { name: 'Transfer' }).click();
    await shows(dialog, 'the transfer dialog closed after the transfer', { state: 'hidden' });
    await shows(page.getByText('No chats yet.'), 'the chat gone from the first agent\'s list');

    // The owner sees it among the team's chats and joins it.
    await page.getByRole('link', { name: /Team chats/ }).click();
    const team = page.getByRole('list', { name: 'Team chats' });
    await shows(team.getByText('with Bea Second'), 'the transferred chat among the team\'s chats');
    await team.getByRole('button', { name: 'Join the chat with Sam Customer' }).click();
    await shows(conversation(page).getByText('Asks about invoices for Norway'), 'the joined chat, with the note');

    // The second agent gets it, announced, with the note; then closes it.
    const beaRow = bea.page.getByRole('list', { name: 'My chats' }).getByRole('link', { name: /Sam Customer/ });
    await shows(beaRow, 'the transferred chat in the second agent\'s list');
    await shows(bea.page.locator('#announcer', { hasText: /transferred to you/ }), 'the transfer announced',
      { state: 'attached' });
    await beaRow.click();
    await shows(conversation(bea.page).getByText('Asks about invoices for Norway'), 'the transfer note');
    await shows(conversation(bea.page).getByText('Yes, we ship to Norway'), 'the whole transcript');
    await screenshot(bea.page, 'app-04-transferred');
    // The owner who joined sees the chat's new agent typing (and Bea does not see her own echo).
    await bea.page.getByRole('combobox', { name: 'Reply' }).pressSequentially('Let me check', { delay: 10 });
    await shows(page.locator('#peek', { hasText: 'Bea Second is typing' }), 'the second agent typing, at the owner');
    assert.equal(await bea.page.locator('#peek').isVisible(), false, 'no typing shown for one\'s own echo');
    await bea.page.getByRole('button', { name: 'Close chat' }).click();
    await shows(bea.page.getByText('This chat is closed.'), 'the chat closed');
    await shows(w.getByText('How was this chat?'), 'the customer asked to rate the ended chat');
    await shows(page.getByText('This chat is closed.'), 'the chat closed for the owner who joined it too');

    // Signing out returns to the sign-in form; a reload stays signed out.
    await bea.page.getByRole('button', { name: 'Sign out' }).click();
    await shows(bea.page.getByRole('heading', { name: 'Sign in to Switchboard' }), 'the sign-in form after signing out');
    await bea.page.reload();
    await shows(bea.page.getByRole('heading', { name: 'Sign in to Switchboard' }), 'still signed out after a reload');

    // The session is kept: a reload of the owner's app is still signed in.
    await page.reload();
    await status(page, 'Accepting chats', 'the owner still signed in and accepting after a reload');
    await accept.click();
    await status(page, 'Don\'t accept chats', 'the owner back to Don\'t accept chats');
  } catch (err) {
    await screenshot(page, 'app-failed-desk').catch(() => {});
    await screenshot(bea.page, 'app-failed-second').catch(() => {});
    throw err;
  } finally {
    await desk.context.close();
    await bea.context.close();
    await customer.context.close();
    await stopAccepting(beaEmail).catch(() => {});
    await owner().then((token) => gql('mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }', {}, token));
  }
});

test('on a phone the app is one column: the list with circles and unread counts, the chat, the details', async () => {
  const email = await createAgent('Cleo Phone');
  const { organization } = await gql('{ organization { settings { waitingLongSeconds customerIdleSeconds } } }', {},
    await owner());
  const SETTINGS = 'mutation($input: UpdateOrganizationSettingsInput!) { updateOrganizationSettings(input: $input) { id } }';
  const { context, page } = await newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  try {
    // Circles turn quickly here: red after 2 s without an answer, grey after 3 s of silence.
    await gql(SETTINGS, { input: { waitingLongSeconds: 2, customerIdleSeconds: 3 } }, await owner());
    await signIn(page, email, 'agent-password-1');
    await status(page, 'Accepting chats', 'the phone agent accepting chats');
    // Pushes matter most on a phone: the switch for them fits its header, in short.
    await shows(page.getByRole('button', { name: 'Notify me', exact: true }), 'Notify me in the phone\'s header');
    const customer = await apiCustomer(await widgetKey(), 'Pia Phone');
    assert.equal(customer.chat.status, 'ACTIVE');
    const row = page.getByRole('list', { name: 'My chats' }).getByRole('link', { name: /Pia Phone/ });
    await shows(row, 'the chat in the phone\'s list');
    await gql('mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }',
      { input: { chatId: customer.chat.id, text: 'Anyone there?' } }, customer.token);
    await shows(row.getByText('Anyone there?'), 'the last message in the row');
    await shows(row.getByText(/unread/), 'the unread count in the row');
    assert.match(await page.title(), /^\(\d+\) Switchboard$/, 'the unread count in the title');
    await shows(row.getByRole('img', { name: 'Waiting long' }), 'the red circle of a customer waiting long');
    await screenshot(page, 'app-05-phone-list');
    assert.deepEqual(await pageAccessibilityProblems(page), [], 'axe: the list on a phone');

    await row.tap();
    await shows(conversation(page).getByText('Hello from Pia Phone'), 'the chat on the phone');
    assert.equal(await page.getByRole('list', { name: 'My chats' }).isVisible(), false, 'the list hidden behind the chat');
    await until(async () => (await page.title()) === 'Switchboard', 'nothing unread in the title once the chat is open');
    await page.getByRole('combobox', { name: 'Reply' }).fill('Hi Pia, how can I help?');
    await page.getByRole('button', { name: 'Send' }).tap();
    await shows(conversation(page).getByText('Hi Pia, how can I help?'), 'the reply on the phone');
    // Answered, then silent: the circle turns grey.
    await shows(page.locator('#chat-head').getByRole('img', { name: 'Customer idle' }), 'the grey circle of an idle customer');
    await screenshot(page, 'app-06-phone-chat');
    assert.deepEqual(await pageAccessibilityProblems(page), [], 'axe: the chat on a phone');
    await page.getByRole('button', { name: 'Details' }).tap();
    await shows(page.getByRole('complementary', { name: 'Customer details' }).getByText('Pages viewed'), 'the details on the phone');
    await screenshot(page, 'app-07-phone-details');
    await page.getByRole('link', { name: 'Back' }).tap();
    await shows(row, 'back to the list');

    // Read is read, on the server too: a reload shows nothing unread.
    await page.reload();
    await shows(row, 'the list after a reload');
    assert.equal(await row.getByText(/unread/).count(), 0, 'nothing unread after a reload');
    assert.equal(await page.title(), 'Switchboard');
  } finally {
    await context.close();
    await stopAccepting(email).catch(() => {});
    await gql(SETTINGS, { input: organization.settings }, await owner());
  }
});

test('the queue, visitors and offline messages: picking a customer and marking a message handled', async () => {
  const email = await createAgent('Dan Desk', { role: 'SUPERVISOR' });
  const key = await widgetKey();
  const { context, page } = await newPage();
  try {
    await signIn(page, email, 'agent-password-1');
    // Nobody accepts: an offline message comes in live.
    await page.getByRole('switch', { name: 'Accept chats' }).click();
    await status(page, 'Don\'t accept chats', 'Dan not accepting');
    await gql('mutation($input: LeaveOfflineMessageInput!) { leaveOfflineMessage(input: $input) { id } }', {
      input: { name: 'Olga Offline', email: 'olga@customer.test', text: 'Call me back please' },
    }, (await gql('mutation($input: StartVisitorSessionInput!) { startVisitorSession(input: $input) { token } }',
      { input: { widgetKey: key, name: 'Olga Offline' } })).startVisitorSession.token);
    await page.getByRole('link', { name: /Offline messages/ }).click();
    const offline = page.getByRole('list', { name: 'Offline messages' });
    await shows(offline.getByText('Call me back please'), 'the offline message');
    await offline.getByRole('button', { name: 'Mark handled: Olga Offline' }).first().click();
    await shows(offline.getByRole('button', { name: 'Mark not handled: Olga Offline' }).first(), 'the message handled');

    // The visitors on the site, live.
    const visitor = await newPage();
    try {
      const marker = `browsing${Date.now()}`;
      await visitor.page.goto(`${BASE}/demo?${marker}`);
      await page.getByRole('link', { name: /Visitors/ }).click();
      const row = page.getByRole('list', { name: 'Visitors on the site' }).getByRole('listitem').filter({ hasText: marker });
      await shows(row.getByText('Harbour Coffee · Shop'), 'the demo page\'s visitor', { timeout: 15000 });
      await row.getByRole('button', { name: /^Greet/ }).click();
      const greet = page.getByRole('dialog', { name: 'Greet a visitor' });
      await greet.getByLabel('Greeting').fill('Hi, can I help you find a coffee?');
      await greet.getByRole('button', { name: 'Send greeting' }).click();
      await shows(widget(visitor.page).getByRole('status').filter({ hasText: 'Hi, can I help you find a coffee?' }),
        'the greeting on the visitor\'s page');
      await shows(row.getByText('Greeted'), 'the visitor shown as greeted', { timeout: 15000 });
      await screenshot(page, 'app-08-visitors');
    } finally {
      await visitor.context.close();
    }

    // A queued customer is picked from the queue.
    await page.getByRole('switch', { name: 'Accept chats' }).click();
    await status(page, 'Accepting chats', 'Dan accepting');
    const { organization } = await gql('{ organization { settings { defaultChatLimit } } }', {}, await owner());
    const limit = organization.settings.defaultChatLimit;
    await gql('mutation { updateOrganizationSettings(input: {defaultChatLimit: 1}) { id } }', {}, await owner());
    try {
      await apiCustomer(key, 'Quinn First');
      const { chat } = await apiCustomer(key, 'Quinn Queued');
      assert.equal(chat.status, 'QUEUED');
      await page.getByRole('link', { name: /Queue/ }).click();
      const queue = page.getByRole('list', { name: 'Waiting customers' });
      await shows(queue.getByText('Quinn Queued', { exact: true }), 'the queued customer');
      await screenshot(page, 'app-09-queue');
      await queue.getByRole('button', { name: 'Pick Quinn Queued' }).click();
      await shows(conversation(page).getByText('Hello from Quinn Queued'), 'the picked chat open');
      await shows(page.getByRole('list', { name: 'My chats' }).getByRole('link', { name: /Quinn Queued/ }), 'the picked chat among mine');
    } finally {
      await gql('mutation($n: Int!) { updateOrganizationSettings(input: {defaultChatLimit: $n}) { id } }',
        { n: limit }, await owner());
    }
  } finally {
    await context.close();
    await stopAccepting(email).catch(() => {});
  }
});

test('installed: the shell opens without a network, and a push shows a notification for its chat', async () => {
  const { context, page } = await newPage();
  await context.grantPermissions(['notifications'], { origin: BASE });
  try {
    const cdp = await context.newCDPSession(page);
    const registrations = [];
    cdp.on('ServiceWorker.workerRegistrationUpdated', (event) => registrations.push(...event.registrations));
    await cdp.send('ServiceWorker.enable');
    await page.goto(`${BASE}/app/`);
    await shows(page.getByRole('heading', { name: 'Sign in to Switchboard' }), 'the sign-in form');
    const manifest = await page.locator('link[rel="manifest"]').getAttribute('href');
    const parsed = await (await fetch(new URL(manifest, `${BASE}/app/`))).json();
    assert.equal(parsed.start_url, '/app/#/chats');
    assert.ok(parsed.icons.some((icon) => icon.sizes === '512x512'));
    const registration = await until(() => registrations.find((r) => r.scopeURL === `${BASE}/app/` && !r.isDeleted),
      'the service worker registered for /app/');
    // Ready: the shell is cached and the worker controls the next load.
    await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));

    await context.setOffline(true);
    await page.reload();
    await shows(page.getByRole('heading', { name: 'Sign in to Switchboard' }), 'the sign-in form, offline');
    await context.setOffline(false);

    // What the server's Web Push carries; the worker shows it, one notification per chat.
    const push = { type: 'NEW_MESSAGE', chatId: 'chat-42', title: 'Sam Customer', body: 'Do you ship to Norway?' };
    const deliver = () => cdp.send('ServiceWorker.deliverPushMessage', {
      origin: new URL(BASE).origin, registrationId: registration.registrationId, data: JSON.stringify(push),
    });
    await deliver();
    // A worker that was still starting after the offline reload can miss the message: it is
    // delivered again every second until one shows (one notification per chat, so never two).
    let looks = 0;
    const shown = await until(async () => {
      const list = await page.evaluate(async () => {
        const ready = await navigator.serviceWorker.ready;
        return (await ready.getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag, chatId: n.data?.chatId }));
      });
      if (list.length) return list;
      if (++looks % 10 === 0) await deliver();
      return null;
    }, 'the pushed notification', 20000);
    assert.deepEqual(shown, [{ title: 'Sam Customer', body: 'Do you ship to Norway?', tag: 'chat-42', chatId: 'chat-42' }]);
  } finally {
    await context.close();
  }
});

test('after the network drops the app says so, reconnects by itself and misses nothing', async () => {
  const email = await createAgent('Rae Reconnect');
  const network = await flakyNetwork();
  const { context, page } = await newPage();
  try {
    await page.goto(`${network.url}/app/`);
    await shows(page.getByRole('heading', { name: 'Sign in to Switchboard' }), 'the sign-in form through the proxy');
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill('agent-password-1');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await status(page, 'Accepting chats', 'Rae accepting chats');
    const customer = await apiCustomer(await widgetKey(), 'Nora Network');
    const row = page.getByRole('list', { name: 'My chats' }).getByRole('link', { name: /Nora Network/ });
    await shows(row, 'the chat in the list');
    await row.click();
    await shows(conversation(page).getByText('Hello from Nora Network'), 'the chat open');

    network.cut();
    await status(page, 'Connecting…', 'the status saying the connection is lost');
    await gql('mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }',
      { input: { chatId: customer.chat.id, text: 'Are you still there?' } }, customer.token);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    network.restore();

    await shows(conversation(page).getByText('Are you still there?'), 'the message sent while offline, after the reconnect',
      { timeout: 20000 });
    await status(page, 'Accepting chats', 'the status back to accepting', { timeout: 20000 });
    assert.equal(await conversation(page).getByText('Are you still there?').count(), 1, 'the message shown once');
  } finally {
    await context.close();
    network.close();
    await stopAccepting(email).catch(() => {});
  }
});

test('the session is refreshed before the access token expires and outlives a reload', async () => {
  const email = await createAgent('Tess Token');
  const { context, page } = await newPage();
  try {
    await page.clock.install();
    await signIn(page, email, 'agent-password-1');
    await status(page, 'Accepting chats', 'Tess accepting chats');
    // Fourteen and a half minutes on (access tokens last fifteen): the app trades its refresh token.
    const refreshed = page.waitForResponse((response) => response.url().endsWith('/graphql') &&
      (response.request().postData() || '').includes('refreshToken('), { timeout: 10000 })
      .catch(() => assert.fail('expected the app to refresh its session within 10 s'));
    await page.clock.fastForward('14:30');
    const body = await (await refreshed).json();
    assert.ok(body.data?.refreshToken?.accessToken, `the refresh succeeded: ${JSON.stringify(body.errors)}`);
    await page.reload();
    await status(page, 'Accepting chats', 'still signed in with the refreshed session after a reload');
  } finally {
    await context.close();
    await stopAccepting(email).catch(() => {});
  }
});

test('canned responses: an admin shares #shipping, an agent types #shi, picks it with the keyboard, the customer reads it with their first name', async () => {
  const logistics = await group('Logistics');
  const email = await createAgent('Uma Canned', { groupIds: [logistics] });
  const admin = await newPage();
  const desk = await newPage();
  const customer = await newPage();
  try {
    // The owner shares a response with everyone; an unknown placeholder is refused by name.
    await signIn(admin.page, 'owner@example.com', OWNER_PASSWORD);
    await admin.page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Canned responses' }).click();
    await shows(admin.page.getByRole('heading', { name: 'Canned responses', level: 2 }), 'the canned responses screen');
    await admin.page.getByRole('button', { name: 'New canned response' }).click();
    const dialog = admin.page.getByRole('dialog', { name: 'New canned response' });
    await shows(dialog, 'the new canned response dialog');
    await dialog.getByLabel('Shortcut').fill('#shipping');
    await dialog.getByLabel('Title', { exact: true }).fill('Shipping times');
    await dialog.getByLabel('Text', { exact: true }).fill('Hi {{customer.nickname}}');
    await dialog.getByRole('radio', { name: 'Everyone' }).check();
    await dialog.getByRole('button', { name: 'Save' }).click();
    await shows(dialog.getByRole('alert').filter({ hasText: 'customer.nickname' }), 'the unknown placeholder refused by name');
    await dialog.getByLabel('Text', { exact: true }).fill('Hi {{customer.first_name}}, we ship within 2 days.');
    await screenshot(admin.page, 'app-10-canned-dialog');
    assert.deepEqual(await pageAccessibilityProblems(admin.page), [], 'axe: the canned response dialog');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await shows(dialog, 'the dialog closed after saving', { state: 'hidden' });
    const shared = admin.page.getByRole('list', { name: 'Canned responses' }).getByRole('listitem').filter({ hasText: '#shipping' });
    await shows(shared.getByText('Everyone · used 0 times'), 'the shared response listed with its scope and usage');
    await shows(shared.getByRole('button', { name: 'Edit #shipping' }), 'the shared response editable by the owner');
    // One for a group the owner is not in: saved, and still listed for the owner to manage.
    await admin.page.getByRole('button', { name: 'New canned response' }).click();
    await dialog.getByLabel('Shortcut').fill('customs');
    await dialog.getByLabel('Title', { exact: true }).fill('Customs');
    await dialog.getByLabel('Text', { exact: true }).fill('Parcels outside the EU may owe customs duties.');
    await dialog.getByRole('radio', { name: 'Group Logistics' }).check();
    await dialog.getByRole('button', { name: 'Save' }).click();
    await shows(admin.page.getByRole('list', { name: 'Canned responses' }).getByRole('button', { name: 'Edit #customs' }),
      'the group response listed for the owner to manage');
    await screenshot(admin.page, 'app-11-canned');
    assert.deepEqual(await pageAccessibilityProblems(admin.page), [], 'axe: the canned responses screen');

    // The agent sees it, cannot change it, and keeps a personal one: no scope to choose.
    await signIn(desk.page, email, 'agent-password-1');
    await status(desk.page, 'Accepting chats', 'Uma accepting chats');
    const sections = desk.page.getByRole('navigation', { name: 'Sections' });
    await sections.getByRole('link', { name: 'Canned responses' }).click();
    const mine = desk.page.getByRole('list', { name: 'Canned responses' });
    await shows(mine.getByText('#shipping'), 'the shared response, for the agent too');
    await shows(mine.getByRole('listitem').filter({ hasText: '#customs' }).getByText('Group Logistics · used 0 times'),
      'the group\'s response, for its member');
    assert.equal(await mine.getByRole('button', { name: 'Edit #shipping' }).count(), 0, 'a shared response is not the agent\'s to edit');
    await desk.page.getByRole('button', { name: 'New canned response' }).click();
    const own = desk.page.getByRole('dialog', { name: 'New canned response' });
    await shows(own, 'the agent\'s dialog');
    assert.equal(await own.getByRole('radio').count(), 0, 'no scope to choose for an agent');
    await own.getByLabel('Shortcut').fill('shift');
    await own.getByLabel('Title', { exact: true }).fill('Opening hours');
    await own.getByLabel('Text', { exact: true }).fill('We are here until 6 pm, {{customer.name}}.');
    await own.getByRole('button', { name: 'Save' }).click();
    await shows(mine.getByRole('listitem').filter({ hasText: '#shift' }).getByText('Personal · used 0 times'), 'the personal response');

    // A customer writes through the widget.
    await customer.page.goto(`${BASE}/demo`);
    const w = widget(customer.page);
    const launcher = w.getByRole('button', { name: /Open the chat, We are online/ });
    await shows(launcher, 'the widget online', { timeout: 15000 });
    await launcher.click();
    await w.getByLabel('Name (optional)').fill('Nina Fjord');
    await w.getByLabel('Message').fill('When does my parcel leave?');
    await w.getByRole('button', { name: 'Start chat' }).click();
    await sections.getByRole('link', { name: /^My chats/ }).click();
    await desk.page.getByRole('list', { name: 'My chats' }).getByRole('link', { name: /Nina Fjord/ }).click();
    await shows(conversation(desk.page).getByText('When does my parcel leave?'), 'the chat open');

    // #shi suggests both, the agent's own first; Down and Enter pick the shared one.
    const reply = desk.page.getByRole('combobox', { name: 'Reply' });
    await reply.pressSequentially('#shi', { delay: 30 });
    const suggestions = desk.page.getByRole('listbox', { name: 'Canned responses' });
    const shipping = suggestions.getByRole('option', { name: /#shipping/ });
    await shows(shipping, 'the shared response suggested');
    assert.equal(await reply.getAttribute('aria-expanded'), 'true');
    const options = await suggestions.getByRole('option').allTextContents();
    assert.deepEqual(options.map((text) => text.split(' ')[0]), ['#shift', '#shipping'], 'personal before shared');
    assert.equal(await suggestions.getByRole('option').first().getAttribute('aria-selected'), 'true', 'the first active');
    await reply.press('ArrowDown');
    assert.equal(await shipping.getAttribute('aria-selected'), 'true', '#shipping active after Down');
    assert.equal(await reply.getAttribute('aria-activedescendant'), await shipping.getAttribute('id'));
    await screenshot(desk.page, 'app-12-canned-suggestions');
    assert.deepEqual(await pageAccessibilityProblems(desk.page), [], 'axe: the suggestions');
    await reply.press('Enter');
    await until(async () => (await reply.inputValue()) === 'Hi Nina, we ship within 2 days.', 'the response expanded in the reply box');
    assert.equal(await reply.getAttribute('aria-expanded'), 'false', 'the list closed after picking');
    await reply.press('Enter');
    await shows(conversation(desk.page).getByText('Hi Nina, we ship within 2 days.'), 'the expanded response sent');
    await shows(w.getByRole('list', { name: 'Conversation' }).getByText('Hi Nina, we ship within 2 days.'),
      'the expanded response at the customer, with their first name');

    // Escape closes the list and leaves the text; the mouse picks too, in the middle of a sentence.
    await reply.pressSequentially('Also #sh', { delay: 30 });
    await shows(suggestions, 'the list open again');
    await reply.press('Escape');
    await shows(suggestions, 'the list closed by Escape', { state: 'hidden' });
    assert.equal(await reply.inputValue(), 'Also #sh');
    await reply.pressSequentially('if', { delay: 30 });
    await suggestions.getByRole('option', { name: /#shift/ }).click();
    await until(async () => (await reply.inputValue()) === 'Also We are here until 6 pm, Nina Fjord.', 'the personal response expanded');
    await reply.press('Enter');
    await shows(conversation(desk.page).getByText('Also We are here until 6 pm, Nina Fjord.'), 'the second response sent');

    // Each use is counted; the agent edits and deletes their own.
    await sections.getByRole('link', { name: 'Canned responses' }).click();
    await shows(mine.getByRole('listitem').filter({ hasText: '#shipping' }).getByText('Everyone · used 1 time', { exact: true }),
      'the shared response used once');
    await mine.getByRole('button', { name: 'Edit #shift' }).click();
    const edit = desk.page.getByRole('dialog', { name: 'Edit #shift' });
    await edit.getByLabel('Title', { exact: true }).fill('Our hours');
    await edit.getByRole('button', { name: 'Save' }).click();
    await shows(mine.getByText('Our hours'), 'the edited title');
    desk.page.once('dialog', (confirm) => confirm.accept());
    await mine.getByRole('button', { name: 'Delete #shift' }).click();
    await shows(mine.getByText('Our hours'), 'the personal response deleted', { state: 'detached' });
  } catch (err) {
    await screenshot(admin.page, 'app-failed-canned-admin').catch(() => {});
    await screenshot(desk.page, 'app-failed-canned-agent').catch(() => {});
    throw err;
  } finally {
    await admin.context.close();
    await desk.context.close();
    await customer.context.close();
    await stopAccepting(email).catch(() => {});
  }
});

test('on a server without canned responses the app says so, and # stays a character', async () => {
  const email = await createAgent('Vic Older');
  // No service worker, so every request of the page passes the route below.
  const { context, page } = await newPage({ serviceWorkers: 'block' });
  // What a server from before canned responses answers: the field is unknown.
  await page.route('**/graphql', async (route) => {
    const body = route.request().postData() || '';
    if (!/cannedResponse/i.test(body)) return route.continue();
    await route.fulfill({ contentType: 'application/json', body: JSON.stringify({ errors: [{
      extensions: { code: 'GRAPHQL_VALIDATION_FAILED' }, locations: [{ column: 3, line: 1 }],
      message: 'Unknown field "cannedResponses" on type "QueryRoot".',
    }] }) });
  });
  try {
    await signIn(page, email, 'agent-password-1');
    await status(page, 'Accepting chats', 'Vic accepting chats');
    await apiCustomer(await widgetKey(), 'Olli Older');
    await page.getByRole('list', { name: 'My chats' }).getByRole('link', { name: /Olli Older/ }).click();
    await shows(conversation(page).getByText('Hello from Olli Older'), 'the chat open');
    const reply = page.getByRole('combobox', { name: 'Reply' });
    const asked = page.waitForRequest((request) => /cannedResponses/.test(request.postData() || ''));
    await reply.pressSequentially('#1', { delay: 30 });
    await asked;
    await reply.pressSequentially(' in the queue', { delay: 30 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(await reply.getAttribute('aria-expanded'), 'false', 'no suggestions');
    assert.equal(await page.locator('#notice').isVisible(), false, 'no error for a feature the server lacks');
    await reply.press('Enter');
    await shows(conversation(page).getByText('#1 in the queue'), 'the text sent as typed');
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Canned responses' }).click();
    await shows(page.getByText(/This server has no canned responses/), 'the screen saying the server lacks them');
    assert.equal(await page.getByRole('button', { name: 'New canned response' }).count(), 0);
    await screenshot(page, 'app-13-canned-unsupported');
  } finally {
    await context.close();
    await stopAccepting(email).catch(() => {});
  }
});
