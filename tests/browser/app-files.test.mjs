// Files in a chat, in chromium: an agent attaches a photo in the web app and the customer's
// widget shows it inline; the customer attaches a PDF and the agent gets a download link.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  BASE, USUAL_SETTINGS, gql, launch, owner, screenshot, shows, widget, widgetFrame, widgetSettings,
  newPage as openPage,
} from './support.mjs';

// A 1×1 PNG: small, and a real image the browser decodes.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=', 'base64');
const PDF = Buffer.from('%PDF-1.4\n% a receipt\n');

let browser;
before(async () => {
  browser = await launch();
  await widgetSettings(USUAL_SETTINGS);
});
after(async () => {
  await browser?.close();
});

test('files: an agent sends a photo the customer sees inline, the customer sends a PDF the agent downloads', async () => {
  const email = `files-agent-${Date.now()}@example.com`;
  await gql('mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }',
    { input: { email, name: 'Fay Files', password: 'agent-password-1', role: 'AGENT' } }, await owner());
  const desk = await openPage(browser);
  const customer = await openPage(browser);
  try {
    await desk.page.goto(`${BASE}/app`);
    await desk.page.getByLabel('Email').fill(email);
    await desk.page.getByLabel('Password').fill('agent-password-1');
    await desk.page.getByRole('button', { name: 'Sign in' }).click();
    await shows(desk.page.locator('#status-text', { hasText: 'Accepting chats' }), 'the agent accepting chats');

    await customer.page.goto(`${BASE}/demo`);
    const w = widget(customer.page);
    const launcher = w.getByRole('button', { name: /Open the chat, We are online/ });
    await shows(launcher, 'the widget online', { timeout: 15000 });
    await launcher.click();
    await w.getByLabel('Name (optional)').fill('Pia Picture');
    await w.getByLabel('Message').fill('The lamp arrived broken');
    await w.getByRole('button', { name: 'Start chat' }).click();
    await shows(w.getByRole('button', { name: 'Attach a file' }), 'the attach button under the running chat');

    const sections = desk.page.getByRole('navigation', { name: 'Sections' });
    await sections.getByRole('link', { name: /^My chats/ }).click();
    await desk.page.getByRole('list', { name: 'My chats' }).getByRole('link', { name: /Pia Picture/ }).click();
    const log = desk.page.getByRole('log', { name: 'Conversation' });
    await shows(log.getByText('The lamp arrived broken'), 'the chat open in the app');

    // The agent attaches a photo with a word of explanation.
    await desk.page.getByRole('combobox', { name: 'Reply' }).fill('Is this the model you have?');
    await desk.page.locator('#attach-file').setInputFiles({ name: 'lamp.png', mimeType: 'image/png', buffer: PNG });
    await shows(log.getByRole('img', { name: 'lamp.png' }), 'the photo in the agent\'s transcript');
    const customerLog = w.getByRole('list', { name: 'Conversation' });
    const photo = customerLog.getByRole('img', { name: 'lamp.png' });
    await shows(photo, 'the photo inline in the widget');
    await shows(customerLog.getByText('Is this the model you have?'), 'the text sent with it');
    const frame = await widgetFrame(customer.page);
    const decoded = await frame.waitForFunction(() => {
      const img = document.querySelector('img[alt="lamp.png"]');
      return img instanceof HTMLImageElement && img.complete && img.naturalWidth === 1;
    }, null, { timeout: 10000 });
    assert.ok(await decoded.jsonValue(), 'the browser decoded the photo');
    await screenshot(customer.page, 'app-files-1-widget-photo');

    // The customer answers with a PDF; the agent gets it as a download.
    await frame.locator('input[type=file]').setInputFiles({ name: 'receipt.pdf', mimeType: 'application/pdf', buffer: PDF });
    await shows(customerLog.getByRole('link', { name: /receipt\.pdf/ }), 'the PDF as a link in the widget');
    const download = log.getByRole('link', { name: /receipt\.pdf/ });
    await shows(download, 'the PDF as a download in the app');
    const href = await download.getAttribute('href');
    assert.match(href, /^\/files\/[^/]+\/receipt\.pdf\?expires=\d+&signature=[0-9a-f]{64}$/);
    const response = await fetch(`${BASE}${href}`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-disposition'), /^attachment;/);
    assert.equal(Buffer.from(await response.arrayBuffer()).toString(), PDF.toString());
    await screenshot(desk.page, 'app-files-2-app');

    // A type the organization does not accept is refused with the server's own words.
    await frame.locator('input[type=file]').setInputFiles({ name: 'tool.exe', mimeType: 'application/x-msdownload', buffer: Buffer.from('MZ') });
    await shows(w.getByText(/not accepted here/), 'the refusal in the widget');
  } catch (err) {
    await screenshot(desk.page, 'app-files-failed-app').catch(() => {});
    await screenshot(customer.page, 'app-files-failed-widget').catch(() => {});
    throw err;
  } finally {
    await desk.context.close();
    await customer.context.close();
    const signedIn = await gql('mutation($e: String!) { login(input: {email: $e, password: "agent-password-1"}) { accessToken } }',
      { e: email }).catch(() => null);
    if (signedIn) {
      await gql('mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }', {}, signedIn.login.accessToken)
        .catch(() => {});
    }
  }
});
