/* The chat widget's frame: the button, the chat window and everything they say, on the
 * server's origin. It speaks GraphQL over fetch and graphql-transport-ws over WebSocket to
 * /graphql with a visitor token, and keeps the visitor and their chat in this origin's
 * localStorage so reloads, other pages and other tabs continue the same conversation. The
 * page that embeds it (widget.js) only sizes it and reports page views; they talk by
 * postMessage. Nothing from the other side is ever parsed as HTML.
 */
// @ts-check
(function () {
  'use strict';

  var hash = new URLSearchParams(location.hash.slice(1));
  var KEY = hash.get('key') || '';
  var HOST = hash.get('o') || '';
  var GROUP = hash.get('group');
  var LOCALE = hash.get('locale');
  var STORAGE = 'switchboard:' + KEY;
  var embedded = window.parent !== window;
  // The page this frame is on, as the browser says (the page itself cannot change it): the
  // server holds widget-key operations to the organization's allowed origins with it.
  var PAGE_ORIGIN = (function () {
    var ancestors = location.ancestorOrigins;
    if (ancestors && ancestors.length) return ancestors[0];
    try {
      return new URL(document.referrer).origin;
    } catch (err) {
      return '';
    }
  })();

  // ---- words ------------------------------------------------------------------------------

  /** @type {Record<string, Record<string, string>>} */
  var WORDS = {
    en: {
      title: 'Chat with us',
      greeting: 'Hi! How can we help you today?',
      offlineText: 'Nobody is available right now. Leave us a message and we will reply by email.',
      unavailable: 'Chats are not available.',
      openChat: 'Open the chat',
      closeWindow: 'Minimize the chat',
      online: 'We are online',
      offline: 'We are offline',
      unread: '{n} unread',
      name: 'Name',
      email: 'Email',
      optional: '(optional)',
      message: 'Message',
      writeMessage: 'Write a message…',
      start: 'Start chat',
      send: 'Send',
      sendOffline: 'Send message',
      offlineSent: 'Thank you! Your message is with our team; we will reply by email.',
      typing: '{name} is typing…',
      anAgent: 'An agent',
      you: 'You',
      queue: 'You are number {position} in the queue.',
      wait: 'Estimated wait: {time}.',
      lessThanMinute: 'less than a minute',
      minutes: '{n} min',
      waiting: 'Waiting for an agent…',
      endChat: 'End chat',
      ended: 'The chat has ended.',
      rate: 'How was this chat?',
      good: 'Good',
      bad: 'Bad',
      comment: 'Comment (optional)',
      sendRating: 'Send rating',
      thanks: 'Thank you for your feedback!',
      newChat: 'Start a new chat',
      reconnecting: 'Connection lost. Reconnecting…',
      failed: 'That did not work. Please try again.',
      tooFast: 'Please wait a moment before sending more.',
      reply: 'Reply',
      dismiss: 'Dismiss',
      newMessage: 'New message',
      conversation: 'Conversation',
      says: '{name}: {text}',
      attach: 'Attach a file',
    },
    de: {
      title: 'Chatten Sie mit uns',
      greeting: 'Hallo! Wie können wir Ihnen helfen?',
      offlineText: 'Gerade ist niemand erreichbar. Hinterlassen Sie uns eine Nachricht, wir antworten per E-Mail.',
      unavailable: 'Chats sind nicht verfügbar.',
      openChat: 'Chat öffnen',
      closeWindow: 'Chat minimieren',
      online: 'Wir sind online',
      offline: 'Wir sind offline',
      unread: '{n} ungelesen',
      name: 'Name',
      email: 'E-Mail',
      optional: '(optional)',
      message: 'Nachricht',
      writeMessage: 'Nachricht schreiben…',
      start: 'Chat starten',
      send: 'Senden',
      sendOffline: 'Nachricht senden',
      offlineSent: 'Danke! Ihre Nachricht ist bei unserem Team; wir antworten per E-Mail.',
      typing: '{name} schreibt…',
      anAgent: 'Ein Mitarbeiter',
      you: 'Sie',
      queue: 'Sie sind Nummer {position} in der Warteschlange.',
      wait: 'Geschätzte Wartezeit: {time}.',
      lessThanMinute: 'weniger als eine Minute',
      minutes: '{n} Min.',
      waiting: 'Wir suchen einen freien Mitarbeiter…',
      endChat: 'Chat beenden',
      ended: 'Der Chat ist beendet.',
      rate: 'Wie war dieser Chat?',
      good: 'Gut',
      bad: 'Schlecht',
      comment: 'Kommentar (optional)',
      sendRating: 'Bewertung senden',
      thanks: 'Danke für Ihre Rückmeldung!',
      newChat: 'Neuen Chat starten',
      reconnecting: 'Verbindung unterbrochen. Neuer Versuch…',
      failed: 'Das hat nicht geklappt. Bitte versuchen Sie es noch einmal.',
      tooFast: 'Bitte warten Sie einen Moment, bevor Sie mehr senden.',
      reply: 'Antworten',
      dismiss: 'Schließen',
      newMessage: 'Neue Nachricht',
      conversation: 'Unterhaltung',
      says: '{name}: {text}',
      attach: 'Datei anhängen',
    },
  };
  var words = WORDS.en;

  /** @param {string} key @param {Record<string, string | number>} [values] */
  function t(key, values) {
    var text = words[key] || WORDS.en[key] || key;
    if (values) {
      Object.keys(values).forEach(function (name) {
        text = text.split('{' + name + '}').join(String(values[name]));
      });
    }
    return text;
  }

  // ---- what the browser keeps -------------------------------------------------------------

  /**
   * @typedef {{visitorId?: string, visitorSecret?: string, token?: string, expiresAt?: string,
   *   chatId?: string | null, cursor?: number, rated?: string | null, userId?: string,
   *   name?: string, email?: string}} Saved
   */
  // This origin's localStorage when the browser gives it to a frame on another site; else the
  // page's, through widget.js ("store" and "stored" messages).
  var ownStorage = (function () {
    try {
      localStorage.setItem(STORAGE + ':probe', '1');
      localStorage.removeItem(STORAGE + ':probe');
      return true;
    } catch (err) {
      return false;
    }
  })();
  /** @type {string | null} */
  var hostStored = null;

  /** @returns {Saved} */
  function load() {
    try {
      var text = ownStorage ? localStorage.getItem(STORAGE) : hostStored;
      return JSON.parse(text || '{}') || {};
    } catch (err) {
      return {};
    }
  }
  var saved = load();
  /** @param {Saved} changes */
  function save(changes) {
    // What another tab wrote wins over this tab's older copy; this tab's copy survives when
    // nothing could be stored.
    saved = Object.assign({}, saved, load(), changes);
    var text = JSON.stringify(saved);
    if (ownStorage) {
      try {
        localStorage.setItem(STORAGE, text);
      } catch (err) {
        // A full quota: the chat still works for this page.
      }
    } else {
      hostStored = text;
      if (embedded && HOST) window.parent.postMessage({ sb: 1, type: 'store', value: text }, HOST);
    }
  }

  // ---- the API ------------------------------------------------------------------------------

  var MESSAGE_FIELDS = 'id cursor text author authorName kind clientId createdAt' +
    ' attachments { id name size isImage url }';
  var CHAT_EVENTS = 'subscription($chatId: ID!, $since: String) { chatEvents(chatId: $chatId, since: $since) {' +
    ' __typename cursor ... on MessageAdded { message { ' + MESSAGE_FIELDS + ' } }' +
    ' ... on TypingChanged { isTyping author }' +
    ' ... on QueuePositionChanged { position estimatedWaitSeconds }' +
    ' ... on ChatClosed { message { ' + MESSAGE_FIELDS + ' } } } }';
  var VISITOR_EVENTS = 'subscription { visitorEvents { __typename' +
    ' ... on GreetingReceived { greeting { id text agentName agentId } } } }';

  /**
   * @param {string} query @param {object} variables @param {boolean} [anonymous]
   * @returns {Promise<any>}
   */
  function gql(query, variables, anonymous) {
    /** @type {Record<string, string>} */
    var headers = { 'Content-Type': 'application/json' };
    if (PAGE_ORIGIN && PAGE_ORIGIN !== 'null') headers['X-Switchboard-Page-Origin'] = PAGE_ORIGIN;
    if (!anonymous && saved.token) headers.Authorization = 'Bearer ' + saved.token;
    return fetch('/graphql', {
      method: 'POST',
      headers: headers,
      body: JSON.stringify({ query: query, variables: variables }),
    }).then(function (response) {
      return response.json();
    }).then(function (body) {
      if (body.errors && body.errors.length) {
        var error = /** @type {any} */ (new Error(body.errors[0].message));
        error.code = (body.errors[0].extensions || {}).code;
        throw error;
      }
      return body.data;
    });
  }

  /** A customer's operation: with a fresh session when the token has expired. */
  function call(query, variables) {
    return session().then(function () {
      return gql(query, variables);
    }).catch(function (err) {
      if (err.code !== 'UNAUTHENTICATED') throw err;
      save({ token: undefined });
      return session().then(function () {
        return gql(query, variables);
      });
    });
  }

  var page = { url: location.href, title: '', referrer: '' };
  /** @type {{name?: string, email?: string, userId?: string, signature?: string}} */
  var who = {};
  /** @type {Promise<void> | null} */
  var starting = null;
  var locale = 'en';

  function tokenFresh() {
    return !!saved.token && !!saved.expiresAt && Date.parse(saved.expiresAt) - Date.now() > 60000;
  }

  /** A visitor session: the kept one while its token lasts, else a new one for this visitor. */
  function session(force) {
    if (!force && tokenFresh()) return Promise.resolve();
    if (starting) return starting;
    /** @type {any} */
    var input = {
      widgetKey: KEY,
      visitorId: saved.visitorId,
      visitorSecret: saved.visitorSecret,
      name: who.name || saved.name,
      email: who.email || saved.email,
      pageUrl: page.url.slice(0, 2048),
      pageTitle: page.title.slice(0, 300) || null,
      referrer: page.referrer.slice(0, 2048) || null,
      userAgent: navigator.userAgent.slice(0, 512),
    };
    if (who.userId && who.signature) input.identity = { userId: who.userId, signature: who.signature };
    var mutation = 'mutation($input: StartVisitorSessionInput!) { startVisitorSession(input: $input) {' +
      ' token visitorId visitorSecret expiresAt } }';
    starting = gql(mutation, { input: input }, true).then(function (data) {
      var started = data.startVisitorSession;
      var changes = /** @type {Saved} */ ({
        token: started.token,
        expiresAt: started.expiresAt,
        visitorId: started.visitorId,
        userId: who.userId,
        name: input.name,
        email: input.email,
      });
      if (started.visitorSecret) changes.visitorSecret = started.visitorSecret;
      if (started.visitorId !== saved.visitorId) {
        // Another customer (the first visit, a lost secret, a signed identity): not their chat.
        changes.chatId = null;
        changes.cursor = -1;
      }
      save(changes);
      reportedPage = page.url;
    }).finally(function () {
      starting = null;
    });
    return starting;
  }

  var reportedPage = '';
  function reportPage() {
    if (!saved.token || page.url === reportedPage) return;
    reportedPage = page.url;
    call('mutation($input: UpdateVisitorPageInput!) { updateVisitorPage(input: $input) { id } }', {
      input: { url: page.url.slice(0, 2048), title: page.title.slice(0, 300) || null },
    }).catch(function () {
      // Page tracking is best effort (its budget may be spent by a fast-clicking visitor).
    });
  }

  // ---- the live connection (graphql-transport-ws) ---------------------------------------
  // https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md

  /** @type {WebSocket | null} */
  var socket = null;
  var acked = false;
  var attempt = 0;
  var reconnectTimer = 0;
  /** @type {Record<string, {payload: () => object, next: (data: any) => void}>} */
  var subscriptions = {};

  function connect() {
    if (socket || reconnectTimer) return;
    session().then(function () {
      var ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host +
        '/graphql', 'graphql-transport-ws');
      socket = ws;
      acked = false;
      ws.onopen = function () {
        send({ type: 'connection_init', payload: { authorization: 'Bearer ' + saved.token } });
      };
      ws.onmessage = function (event) {
        var message = JSON.parse(event.data);
        if (message.type === 'connection_ack') {
          acked = true;
          attempt = 0;
          setConnected(true);
          Object.keys(subscriptions).forEach(start);
        } else if (message.type === 'ping') {
          send({ type: 'pong' });
        } else if (message.type === 'next' && subscriptions[message.id]) {
          var data = message.payload && message.payload.data;
          if (data) subscriptions[message.id].next(data);
        }
      };
      ws.onclose = function (event) {
        if (socket !== ws) return;
        socket = null;
        acked = false;
        // 4403: the token is no longer good (expired, or the visitor changed).
        if (event.code === 4403) save({ token: undefined });
        reconnectLater();
      };
    }).catch(reconnectLater);
  }

  /** Exponential backoff with jitter, so a server restart is not met by every page at once. */
  function reconnectLater() {
    if (reconnectTimer) return;
    if (attempt > 0) setConnected(false);
    var delay = Math.min(30000, 500 * Math.pow(2, attempt)) * (0.5 + Math.random() / 2);
    attempt++;
    reconnectTimer = window.setTimeout(function () {
      reconnectTimer = 0;
      connect();
    }, delay);
  }

  window.addEventListener('online', function () {
    if (reconnectTimer) {
      clearTimeout(reconnectTimer);
      reconnectTimer = 0;
      attempt = 0;
    }
    connect();
  });

  function send(message) {
    if (socket && socket.readyState === 1) socket.send(JSON.stringify(message));
  }

  function start(id) {
    if (acked) send({ id: id, type: 'subscribe', payload: subscriptions[id].payload() });
  }

  function subscribe(id, payload, next) {
    subscriptions[id] = { payload: payload, next: next };
    start(id);
  }

  function unsubscribe(id) {
    if (!subscriptions[id]) return;
    delete subscriptions[id];
    if (acked) send({ id: id, type: 'complete' });
  }

  // ---- the page -----------------------------------------------------------------------------

  /**
   * @param {string} tag @param {Record<string, any>} [attrs]
   * @param {Array<Node | string | null | undefined> | string} [children]
   * @returns {any}
   */
  function h(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = /** @type {any} */ (attrs)[name];
      if (value === null || value === undefined || value === false) return;
      if (name.slice(0, 2) === 'on') node.addEventListener(name.slice(2), value);
      else if (name === 'text') node.textContent = value;
      else node.setAttribute(name, value === true ? '' : value);
    });
    (typeof children === 'string' ? [children] : children || []).forEach(function (child) {
      if (child !== null && child !== undefined) node.append(child);
    });
    return node;
  }

  /** Text with its http(s) links made clickable, built from text nodes: never HTML. */
  function linkify(node, text) {
    var pattern = /https?:\/\/[^\s<>"']+/g;
    var last = 0;
    var match;
    while ((match = pattern.exec(text))) {
      var url = match[0].replace(/[.,;:!?)\]]+$/, '');
      var valid = null;
      try {
        valid = new URL(url);
      } catch (err) {
        valid = null;
      }
      if (!valid || (valid.protocol !== 'http:' && valid.protocol !== 'https:')) continue;
      node.append(text.slice(last, match.index));
      node.append(h('a', { href: valid.href, target: '_blank', rel: 'noopener noreferrer', text: url }));
      last = match.index + url.length;
      pattern.lastIndex = last;
    }
    node.append(text.slice(last));
  }

  function initial(name) {
    return (name || '?').trim().charAt(0).toUpperCase() || '?';
  }

  var SVG = 'http://www.w3.org/2000/svg';
  function icon(path) {
    var svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    var shape = document.createElementNS(SVG, 'path');
    shape.setAttribute('d', path);
    svg.append(shape);
    return svg;
  }
  var CHAT_ICON = 'M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z';
  var CLOSE_ICON = 'M6 6l12 12M18 6L6 18';
  var CLIP_ICON = 'M21 11l-8.5 8.5a5 5 0 0 1-7-7L14 4a3.5 3.5 0 0 1 5 5l-8.5 8.5a2 2 0 0 1-3-3L15 7';
  var THUMB_ICON = 'M2 21h4V9H2v12zm20-11a2 2 0 0 0-2-2h-6.3l1-4.6v-.3c0-.4-.2-.8-.5-1.1L13.2 1 6.6 7.6C6.2 8 6 8.5 6 9v10a2 2 0 0 0 2 2h9c.8 0 1.5-.5 1.8-1.2l3-7.1c.1-.2.2-.5.2-.7v-2z';

  var app = /** @type {HTMLElement} */ (document.getElementById('app'));
  var ui = /** @type {Record<string, any>} */ ({});

  /** @type {any} */
  var config = null;
  /** @type {any} */
  var availability = { online: false, queueFull: false, banned: false };
  var groupId = null;
  /** @type {{id: string, status: string, assigneeName: string | null} | null} */
  var chat = null;
  var cursor = -1;
  /** @type {Set<string>} */
  var seen = new Set();
  var isOpen = false;
  var unread = 0;
  var small = false;
  /** @type {any} */
  var greeting = null;
  var view = '';
  var live = false;
  /** Whether the server refused this widget key on this page. */
  var refused = false;

  function build() {
    ui.status = h('span', { class: 'dot', 'aria-hidden': 'true' });
    ui.badge = h('span', { class: 'badge', 'aria-hidden': 'true', hidden: true });
    ui.button = h('button', { type: 'button', class: 'launcher', 'aria-expanded': 'false', onclick: toggle },
      [icon(CHAT_ICON), ui.status, ui.badge]);
    ui.bubbleText = h('p', { class: 'bubble-text' });
    ui.bubbleFrom = h('p', { class: 'bubble-from' });
    ui.bubble = h('div', { class: 'greeting', hidden: true, role: 'status' }, [
      ui.bubbleFrom, ui.bubbleText,
      h('div', { class: 'greeting-actions' }, [
        ui.replyButton = h('button', { type: 'button', class: 'primary', onclick: answerGreeting }),
        ui.dismissButton = h('button', { type: 'button', class: 'plain', onclick: dismissGreeting }),
      ]),
    ]);

    ui.avatar = h('span', { class: 'avatar', 'aria-hidden': 'true' });
    ui.title = h('h1', { id: 'sb-title' });
    ui.subtitle = h('p', { class: 'subtitle' });
    ui.endButton = h('button', { type: 'button', class: 'end', hidden: true, onclick: endChat });
    ui.closeButton = h('button', { type: 'button', class: 'icon', onclick: function () { setOpen(false); } },
      [icon(CLOSE_ICON)]);
    ui.notice = h('p', { class: 'notice', role: 'status', hidden: true });
    ui.queue = h('p', { class: 'queue', role: 'status', hidden: true });
    ui.log = h('ol', { class: 'log', tabindex: '0' });
    ui.typing = h('p', { class: 'typing', hidden: true });
    ui.body = h('div', { class: 'body' });
    ui.live = h('div', { class: 'sr', 'aria-live': 'polite', 'aria-atomic': 'true' });
    ui.window = h('section', { class: 'window', hidden: true, 'aria-labelledby': 'sb-title', onkeydown: onKey }, [
      h('header', { class: 'head' }, [ui.avatar, h('div', { class: 'names' }, [ui.title, ui.subtitle]),
        ui.endButton, ui.closeButton]),
      ui.notice, ui.queue, ui.log, ui.typing, ui.body,
    ]);
    app.append(ui.window, ui.bubble, ui.button, ui.live);
  }

  function applyWords() {
    document.documentElement.lang = locale;
    ui.title.textContent = (config && config.title) || t('title');
    ui.closeButton.setAttribute('aria-label', t('closeWindow'));
    ui.endButton.textContent = t('endChat');
    ui.log.setAttribute('aria-label', t('conversation'));
    ui.replyButton.textContent = t('reply');
    ui.dismissButton.textContent = t('dismiss');
    ui.typing.textContent = '';
  }

  function paintButton() {
    var online = !!chat || availability.online;
    ui.status.className = 'dot ' + (online ? 'on' : 'off');
    var label = t('openChat') + ', ' + t(online ? 'online' : 'offline');
    if (unread) label += ', ' + t('unread', { n: unread });
    ui.button.setAttribute('aria-label', label);
    ui.button.setAttribute('aria-expanded', String(isOpen));
    ui.badge.textContent = unread > 9 ? '9+' : String(unread);
    ui.badge.hidden = !unread;
    ui.button.hidden = isOpen && small;
    ui.subtitle.textContent = chat && chat.assigneeName ? chat.assigneeName : t(online ? 'online' : 'offline');
    ui.avatar.textContent = initial(chat && chat.assigneeName ? chat.assigneeName :
      (config && config.organizationName) || ui.title.textContent);
    ui.endButton.hidden = !chat || chat.status === 'CLOSED';
  }

  function tellHost() {
    if (!embedded || !HOST) return;
    window.parent.postMessage({
      sb: 1, type: 'state',
      state: {
        hidden: refused,
        open: isOpen, bubble: !!greeting && !isOpen && !chat, unread: unread,
        position: (config && config.position) || 'RIGHT', flashText: t('newMessage'),
      },
    }, HOST);
  }

  function emit(name, detail) {
    if (embedded && HOST) window.parent.postMessage({ sb: 1, type: 'event', name: name, detail: detail }, HOST);
  }

  function announce(text) {
    ui.live.textContent = '';
    setTimeout(function () {
      ui.live.textContent = text;
    }, 50);
  }

  function setOpen(open) {
    if (open === isOpen) return;
    isOpen = open;
    var hadFocus = ui.window.contains(document.activeElement);
    ui.window.hidden = !open;
    document.body.classList.toggle('open', open);
    ui.bubble.hidden = !greeting || open || !!chat;
    paintButton();
    tellHost();
    if (open) {
      markRead();
      if (!chat) refreshStartView();
      focusFirst();
    } else if (hadFocus) {
      // Back to the button, unless the host page closed the window while the visitor was
      // elsewhere on it.
      ui.button.focus();
    }
  }


  function toggle() {
    setOpen(!isOpen);
  }

  function onKey(event) {
    if (event.key === 'Escape') setOpen(false);
  }

  function focusFirst() {
    setTimeout(function () {
      var target = ui.body.querySelector('input, textarea, button');
      if (target) target.focus();
      else ui.closeButton.focus();
    }, 0);
  }

  function markRead() {
    if (unread && isOpen && !document.hidden) {
      unread = 0;
      paintButton();
      tellHost();
    }
  }
  document.addEventListener('visibilitychange', markRead);

  function setConnected(connected) {
    ui.notice.hidden = connected;
    ui.notice.textContent = connected ? '' : t('reconnecting');
  }

  function flashError(err) {
    ui.notice.hidden = false;
    ui.notice.textContent = err && err.code === 'RATE_LIMITED' ? t('tooFast') :
      err && /^FILE_/.test(err.code || '') ? err.message : t('failed');
    setTimeout(function () {
      if (ui.notice.textContent !== t('reconnecting')) ui.notice.hidden = true;
    }, 6000);
  }

  // ---- views ------------------------------------------------------------------------------

  /** @param {string} name @param {HTMLElement[]} content */
  function show(name, content) {
    view = name;
    ui.body.replaceChildren.apply(ui.body, content);
    ui.body.className = 'body ' + name;
  }

  function field(label, control) {
    return h('label', { class: 'field' }, [h('span', {}, label), control]);
  }

  /**
   * Asks whether anyone is there and switches between the pre-chat and the offline form when
   * that changed, keeping whatever the visitor has typed otherwise.
   */
  function refreshStartView() {
    return refreshAvailability().then(function () {
      if (chat) return;
      var wanted = availability.online || greeting ? 'start' : 'offline';
      // The thanks for an offline message stays until someone is there again.
      if (view !== wanted && !(view === 'sent' && wanted === 'offline')) showStartView();
    });
  }

  /** The pre-chat form (or the offline form when nobody can take a chat). */
  function showStartView() {
    if (chat) return;
    ui.queue.hidden = true;
    if (!greeting) ui.log.replaceChildren();
    if (!availability.online && !greeting) return showOffline();
    var nameRule = (config && config.preChatName) || 'OPTIONAL';
    var emailRule = (config && config.preChatEmail) || 'OPTIONAL';
    var known = !!saved.chatId || !!saved.name;
    var controls = [];
    var intro = h('p', { class: 'intro' }, (config && config.greeting) || t('greeting'));
    var name = null;
    var email = null;
    if (nameRule !== 'HIDDEN' && !(known && saved.name)) {
      name = h('input', { name: 'name', autocomplete: 'name', maxlength: '100', required: nameRule === 'REQUIRED' });
      name.value = who.name || '';
      controls.push(field(nameRule === 'REQUIRED' ? t('name') : t('name') + ' ' + t('optional'), name));
    }
    if (emailRule !== 'HIDDEN' && !(known && saved.email)) {
      email = h('input', { name: 'email', type: 'email', autocomplete: 'email', maxlength: '254',
        required: emailRule === 'REQUIRED' });
      email.value = who.email || '';
      controls.push(field(emailRule === 'REQUIRED' ? t('email') : t('email') + ' ' + t('optional'), email));
    }
    var text = h('textarea', { name: 'message', rows: '3', maxlength: '4000', required: true });
    controls.push(field(t('message'), text));
    var submit = h('button', { type: 'submit', class: 'primary' }, t('start'));
    var form = h('form', {
      class: 'form', onsubmit: function (event) {
        event.preventDefault();
        submit.disabled = true;
        startChat(text.value, name && name.value.trim(), email && email.value.trim()).catch(function (err) {
          if (err.code === 'AGENTS_OFFLINE' || err.code === 'BANNED') {
            availability = { online: false, queueFull: false, banned: err.code === 'BANNED' };
            showOffline(text.value);
          } else {
            flashError(err);
          }
        }).finally(function () {
          submit.disabled = false;
        });
      },
    }, controls.concat([submit]));
    show('start', greeting ? [form] : [intro, form]);
    if (isOpen) focusFirst();
  }

  function showOffline(draft) {
    if (chat) return;
    // A banned visitor: neither a chat nor an offline message would be taken.
    if (availability.banned) return show('offline', [h('p', { class: 'intro' }, t('unavailable'))]);
    var name = h('input', { name: 'name', autocomplete: 'name', maxlength: '100', required: true });
    var email = h('input', { name: 'email', type: 'email', autocomplete: 'email', maxlength: '254', required: true });
    var text = h('textarea', { name: 'message', rows: '4', maxlength: '4000', required: true });
    name.value = who.name || saved.name || '';
    email.value = who.email || saved.email || '';
    text.value = draft || '';
    var submit = h('button', { type: 'submit', class: 'primary' }, t('sendOffline'));
    var form = h('form', {
      class: 'form', onsubmit: function (event) {
        event.preventDefault();
        submit.disabled = true;
        call('mutation($input: LeaveOfflineMessageInput!) { leaveOfflineMessage(input: $input) { id } }', {
          input: { name: name.value.trim(), email: email.value.trim(), text: text.value.trim(), groupId: groupId },
        }).then(function () {
          var done = h('p', { class: 'done', tabindex: '-1' }, t('offlineSent'));
          show('sent', [done]);
          done.focus();
        }).catch(function (err) {
          submit.disabled = false;
          flashError(err);
        });
      },
    }, [field(t('name'), name), field(t('email'), email), field(t('message'), text), submit]);
    show('offline', [h('p', { class: 'intro' }, (config && config.offlineText) || t('offlineText')), form]);
    if (isOpen) focusFirst();
  }

  /** The composer under a running chat. */
  function showComposer() {
    var text = h('textarea', { name: 'message', rows: '2', maxlength: '4000', 'aria-label': t('message'),
      placeholder: t('writeMessage') });
    var submit = h('button', { type: 'submit', class: 'primary send' }, t('send'));
    var picker = h('input', { type: 'file', hidden: '', multiple: '', 'aria-hidden': 'true', tabindex: '-1' });
    picker.addEventListener('change', function () {
      Array.prototype.forEach.call(picker.files || [], sendFile);
      picker.value = '';
    });
    var attach = h('button', { type: 'button', class: 'icon attach', title: t('attach'), 'aria-label': t('attach'),
      onclick: function () { picker.click(); } }, [icon(CLIP_ICON)]);
    var form = h('form', {
      class: 'composer', onsubmit: function (event) {
        event.preventDefault();
        var value = text.value.trim();
        if (!value || !chat) return;
        text.value = '';
        stopTyping();
        sendMessage(value);
      },
    }, [attach, picker, text, submit]);
    text.addEventListener('keydown', function (event) {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    text.addEventListener('input', function () {
      typing(text.value);
    });
    show('chat', [form]);
  }

  function showRating() {
    var choice = '';
    var good = h('button', { type: 'button', class: 'choice', 'aria-pressed': 'false' }, [icon(THUMB_ICON), t('good')]);
    var bad = h('button', { type: 'button', class: 'choice down', 'aria-pressed': 'false' }, [icon(THUMB_ICON), t('bad')]);
    var comment = h('textarea', { name: 'comment', rows: '2', maxlength: '1000' });
    var submit = h('button', { type: 'submit', class: 'primary', disabled: true }, t('sendRating'));
    function pick(value) {
      choice = value;
      good.setAttribute('aria-pressed', String(value === 'GOOD'));
      bad.setAttribute('aria-pressed', String(value === 'BAD'));
      submit.disabled = false;
    }
    good.addEventListener('click', function () { pick('GOOD'); });
    bad.addEventListener('click', function () { pick('BAD'); });
    var chatId = chat ? chat.id : '';
    var question = h('p', { id: 'sb-rate', class: 'intro' }, t('rate'));
    var form = h('form', {
      class: 'form rating', onsubmit: function (event) {
        event.preventDefault();
        submit.disabled = true;
        call('mutation($input: RateChatInput!) { rateChat(input: $input) { id rating } }', {
          input: { chatId: chatId, rating: choice, comment: comment.value.trim() || null },
        }).then(function () {
          save({ rated: chatId });
          showEnded(true);
        }).catch(function (err) {
          submit.disabled = false;
          flashError(err);
        });
      },
    }, [h('div', { class: 'choices', role: 'group', 'aria-labelledby': 'sb-rate' }, [good, bad]),
      field(t('comment'), comment), submit]);
    show('rate', [question, form, newChatButton()]);
  }

  function showEnded(thanked) {
    var note = h('p', { class: 'done', tabindex: '-1' }, thanked ? t('thanks') : t('ended'));
    show('ended', [note, newChatButton()]);
    if (isOpen) note.focus();
  }

  function newChatButton() {
    return h('button', {
      type: 'button', class: 'plain wide', onclick: function () {
        leaveChat();
        save({ chatId: null, cursor: -1 });
        refreshAvailability().then(showStartView);
      },
    }, t('newChat'));
  }

  // ---- the transcript -----------------------------------------------------------------------

  var lastAuthor = '';

  /** @param {any} message @param {boolean} [pending] */
  function render(message, pending) {
    var node;
    if (message.kind !== 'MESSAGE') {
      node = h('li', { class: 'system' }, message.text);
      lastAuthor = '';
    } else {
      var mine = message.author === 'CUSTOMER';
      var author = mine ? 'me' : message.authorName || '';
      var text = message.text ? h('p', { class: 'text' }) : null;
      if (text) linkify(text, message.text);
      node = h('li', { class: 'message ' + (mine ? 'mine' : 'theirs'), 'aria-busy': pending ? 'true' : null }, [
        author !== lastAuthor ? h('p', { class: 'from' }, mine ? t('you') : [
          h('span', { class: 'avatar small', 'aria-hidden': 'true' }, initial(message.authorName)),
          message.authorName || t('anAgent'),
        ]) : null,
        text,
      ].concat((message.attachments || []).map(attachment)));
      lastAuthor = author;
    }
    if (message.clientId) node.dataset.client = message.clientId;
    var atBottom = ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 80;
    ui.log.append(node);
    if (atBottom || message.author === 'CUSTOMER') ui.log.scrollTop = ui.log.scrollHeight;
    return node;
  }

  /** A file of a message: an image shown inline, anything else a download link. */
  function attachment(file) {
    if (!file.url) return h('p', { class: 'file' }, file.name);
    if (file.isImage) {
      return h('a', { class: 'image', href: file.url, target: '_blank', rel: 'noopener' },
        [h('img', { src: file.url, alt: file.name, loading: 'lazy' })]);
    }
    var size = file.size < 1048576 ? Math.ceil(file.size / 1024) + ' KB' : (file.size / 1048576).toFixed(1) + ' MB';
    return h('a', { class: 'file', href: file.url, download: file.name }, file.name + ' (' + size + ')');
  }

  /** One transcript entry, once, however many times the stream or a reload delivers it. */
  function add(message) {
    if (seen.has(message.id)) return;
    seen.add(message.id);
    if (message.clientId) {
      var pending = ui.log.querySelector('[data-client="' + CSS.escape(message.clientId) + '"]');
      if (pending) {
        pending.removeAttribute('aria-busy');
        return;
      }
    }
    render(message);
    if (message.kind === 'AGENT_ASSIGNED' || message.kind === 'CHAT_TRANSFERRED' || message.kind === 'SUPERVISOR_JOINED') {
      refreshChat();
    }
    if (message.author === 'AGENT' && message.authorName && chat && !chat.assigneeName) {
      chat.assigneeName = message.authorName;
      paintButton();
    }
    if (!live || message.author === 'CUSTOMER') return;
    if (message.author === 'AGENT') {
      ui.typing.hidden = true;
      emit('message_received', { chatId: message.chatId, text: message.text, authorName: message.authorName });
    }
    announce(message.kind === 'MESSAGE' ? t('says', { name: message.authorName || t('anAgent'), text: message.text }) :
      message.text);
    if (message.kind === 'MESSAGE' && (!isOpen || document.hidden)) {
      unread++;
      paintButton();
      tellHost();
    }
  }

  function newClientId() {
    if (crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  function sendMessage(text) {
    var clientId = newClientId();
    var node = render({ kind: 'MESSAGE', author: 'CUSTOMER', text: text, clientId: clientId }, true);
    var chatId = chat ? chat.id : '';
    call('mutation($input: SendMessageInput!) { sendMessage(input: $input) { ' + MESSAGE_FIELDS + ' } }', {
      input: { chatId: chatId, text: text, clientId: clientId },
    }).then(function (data) {
      node.removeAttribute('aria-busy');
      seen.add(data.sendMessage.id);
    }).catch(function (err) {
      node.remove();
      var box = ui.body.querySelector('textarea');
      if (box && !box.value) box.value = text;
      flashError(err);
    });
  }

  /** Uploads a file into the chat (POST /files), then sends it as a message of its own. */
  function sendFile(file) {
    if (!chat) return;
    var chatId = chat.id;
    var clientId = newClientId();
    var node = render({ kind: 'MESSAGE', author: 'CUSTOMER', text: file.name, clientId: clientId }, true);
    session().then(function () {
      return fetch('/files?chatId=' + encodeURIComponent(chatId) + '&name=' + encodeURIComponent(file.name), {
        method: 'POST',
        headers: { Authorization: 'Bearer ' + saved.token, 'Content-Type': file.type || 'application/octet-stream' },
        body: file,
      });
    }).then(function (response) {
      return response.json();
    }).then(function (body) {
      if (body.errors && body.errors.length) {
        var error = /** @type {any} */ (new Error(body.errors[0].message));
        error.code = (body.errors[0].extensions || {}).code;
        throw error;
      }
      return call('mutation($input: SendMessageInput!) { sendMessage(input: $input) { ' + MESSAGE_FIELDS + ' } }', {
        input: { chatId: chatId, text: '', clientId: clientId, fileIds: [body.id] },
      });
    }).then(function (data) {
      seen.add(data.sendMessage.id);
      node.replaceWith(render(data.sendMessage));
    }).catch(function (err) {
      node.remove();
      flashError(err);
    });
  }

  // The customer's typing, with the draft as the agents' sneak peek, at most once a second.
  var typingSent = 0;
  var typingTimer = 0;
  var idleTimer = 0;
  var draft = '';
  function typing(value) {
    draft = value;
    clearTimeout(idleTimer);
    idleTimer = window.setTimeout(stopTyping, 5000);
    if (typingTimer) return;
    var wait = Math.max(0, typingSent + 1000 - Date.now());
    typingTimer = window.setTimeout(function () {
      typingTimer = 0;
      typingSent = Date.now();
      setTyping(!!draft.trim(), draft.slice(0, 1000));
    }, wait);
  }
  function stopTyping() {
    clearTimeout(typingTimer);
    clearTimeout(idleTimer);
    typingTimer = 0;
    if (draft) setTyping(false, null);
    draft = '';
  }
  function setTyping(isTyping, text) {
    if (!chat || chat.status === 'CLOSED') return;
    call('mutation($input: SetTypingInput!) { setTyping(input: $input) }', {
      input: { chatId: chat.id, isTyping: isTyping, draft: isTyping ? text : null },
    }).catch(function () {
      // A lost typing notice is harmless.
    });
  }

  var agentTypingTimer = 0;
  function onChatEvent(event) {
    var stored = event.__typename === 'MessageAdded' || event.__typename === 'ChatClosed';
    if (stored) {
      var position = Number(event.cursor);
      if (position <= cursor) return;
      cursor = position;
      save({ cursor: cursor });
      if (event.message) add(event.message);
      if (event.__typename === 'ChatClosed') closed();
    } else if (event.__typename === 'TypingChanged' && event.author === 'AGENT') {
      ui.typing.hidden = !event.isTyping;
      ui.typing.textContent = t('typing', { name: (chat && chat.assigneeName) || t('anAgent') });
      clearTimeout(agentTypingTimer);
      if (event.isTyping) {
        agentTypingTimer = window.setTimeout(function () { ui.typing.hidden = true; }, 20000);
      }
    } else if (event.__typename === 'QueuePositionChanged' && chat && chat.status === 'QUEUED') {
      var wait = event.estimatedWaitSeconds < 60 ? t('lessThanMinute') :
        t('minutes', { n: Math.round(event.estimatedWaitSeconds / 60) });
      ui.queue.textContent = t('queue', { position: event.position }) + ' ' + t('wait', { time: wait });
      ui.queue.hidden = false;
    }
  }

  function closed() {
    if (!chat) return;
    chat.status = 'CLOSED';
    ui.queue.hidden = true;
    ui.typing.hidden = true;
    stopTyping();
    unsubscribe('chat');
    paintButton();
    if (saved.rated === chat.id) showEnded(true);
    else showRating();
    if (isOpen) focusFirst();
  }

  function refreshChat() {
    if (!chat) return;
    var id = chat.id;
    call('query($id: ID!) { chat(id: $id) { id status assigneeName } }', { id: id }).then(function (data) {
      if (!chat || chat.id !== id) return;
      chat.assigneeName = data.chat.assigneeName;
      if (data.chat.status === 'ACTIVE' && chat.status === 'QUEUED') {
        chat.status = 'ACTIVE';
        ui.queue.hidden = true;
      }
      paintButton();
    }).catch(function () {});
  }

  /**
   * Shows the chat `id`: its latest entries, then the live stream from the last of them. A chat
   * just started (`started`) has no entries to read yet: its stream replays it from the start.
   */
  function openChat(id, started) {
    leaveChat();
    chat = { id: id, status: 'QUEUED', assigneeName: null };
    seen = new Set();
    cursor = -1;
    lastAuthor = '';
    ui.log.replaceChildren();
    greeting = null;
    ui.bubble.hidden = true;
    var loaded = started ? Promise.resolve({ chat: started, fresh: true }) : call('query($id: ID!) { chat(id: $id) { id status assigneeName' +
      ' latestEvents(last: 100) { items { ' + MESSAGE_FIELDS + ' } } } }', { id: id });
    return loaded.then(function (data) {
      if (!chat || chat.id !== id) return;
      live = false;
      chat.status = data.chat.status;
      chat.assigneeName = data.chat.assigneeName;
      if (!data.fresh) {
        data.chat.latestEvents.items.forEach(function (message) {
          cursor = Math.max(cursor, Number(message.cursor));
          add(message);
        });
      }
      live = true;
      save({ chatId: id, cursor: cursor });
      paintButton();
      if (chat.status === 'CLOSED') {
        chat.status = 'ACTIVE';
        closed();
        return;
      }
      if (chat.status === 'QUEUED') {
        ui.queue.textContent = t('waiting');
        ui.queue.hidden = false;
      }
      showComposer();
      if (isOpen) focusFirst();
      subscribe('chat', function () {
        return { query: CHAT_EVENTS, variables: { chatId: id, since: cursor < 0 ? null : String(cursor) } };
      }, function (data) {
        onChatEvent(data.chatEvents);
      });
      connect();
    }).catch(function (err) {
      if (err.code === 'NOT_FOUND' || err.code === 'FORBIDDEN') {
        chat = null;
        save({ chatId: null, cursor: -1 });
        showStartView();
      } else {
        flashError(err);
      }
    });
  }

  function leaveChat() {
    unsubscribe('chat');
    chat = null;
    ui.queue.hidden = true;
    ui.typing.hidden = true;
    paintButton();
  }

  function startChat(message, name, email) {
    var text = message.trim();
    if (!text) return Promise.resolve();
    var renamed = (name && name !== saved.name) || (email && email !== saved.email);
    if (name) who.name = name;
    if (email) who.email = email;
    var ready = renamed ? session(true) : session();
    var greetingId = greeting ? greeting.id : null;
    var mutation = 'mutation($input: StartChatInput!) { startChat(input: $input) { id status assigneeName } }';
    /** @type {any} */
    var input = { message: text, groupId: groupId };
    if (greetingId) input.greetingId = greetingId;
    return ready.then(function () {
      return call(mutation, { input: input });
    }).then(function (data) {
      var started = data.startChat;
      save({ chatId: started.id, cursor: -1, rated: null });
      emit('chat_started', { chatId: started.id });
      return openChat(started.id, started);
    });
  }

  function endChat() {
    if (!chat) return;
    var id = chat.id;
    call('mutation($id: ID!) { closeChat(chatId: $id) { id status } }', { id: id }).then(function () {
      if (chat && chat.id === id) closed();
    }).catch(flashError);
  }

  // ---- greetings ----------------------------------------------------------------------------

  function onVisitorEvent(event) {
    if (event.__typename !== 'GreetingReceived' || chat) return;
    greeting = event.greeting;
    ui.bubbleFrom.textContent = greeting.agentName || (config && config.organizationName) || '';
    ui.bubbleText.replaceChildren();
    linkify(ui.bubbleText, greeting.text);
    ui.bubble.hidden = isOpen;
    seen = new Set();
    lastAuthor = '';
    ui.log.replaceChildren();
    render({ kind: 'MESSAGE', author: 'AGENT', authorName: greeting.agentName, text: greeting.text });
    if (!isOpen) {
      unread++;
      announce(t('says', { name: greeting.agentName || t('anAgent'), text: greeting.text }));
    }
    paintButton();
    tellHost();
    if (isOpen) showStartView();
  }

  function answerGreeting() {
    setOpen(true);
    showStartView();
    focusFirst();
  }

  function dismissGreeting() {
    if (!greeting) return;
    var id = greeting.id;
    greeting = null;
    ui.bubble.hidden = true;
    ui.log.replaceChildren();
    unread = 0;
    paintButton();
    tellHost();
    ui.button.focus();
    call('mutation($id: ID!) { dismissGreeting(id: $id) { id } }', { id: id }).catch(function () {});
  }

  // ---- start-up -----------------------------------------------------------------------------

  function refreshAvailability() {
    // Sent with the visitor's token when there is one: only their own session hears of a ban.
    var query = 'query($key: String!, $group: ID) { availability(widgetKey: $key, groupId: $group) { online queueFull queueLength estimatedWaitSeconds banned } }';
    return gql(query, { key: KEY, group: groupId }).then(function (data) {
      availability = data.availability;
    }).catch(function () {
      availability = { online: false, queueFull: false, banned: false };
    }).then(function () {
      paintButton();
    });
  }

  function loadConfig() {
    var query = 'query($key: String!) { widget(widgetKey: $key) { organizationName color position title greeting' +
      ' offlineText preChatName preChatEmail locale groups { id name } } }';
    return gql(query, { key: KEY }, true).then(function (data) {
      config = data.widget;
    }).catch(function (err) {
      if (err.code === 'FORBIDDEN' || err.code === 'NOT_FOUND') {
        // A key this page may not use (or none at all): no button, and a word for the developer.
        refused = true;
        console.warn('Switchboard: no chat widget here: ' + err.message);
        throw err;
      }
      // Unreachable for now: the defaults, and availability decides the rest.
      config = null;
    }).then(function () {
      locale = LOCALE || (config && config.locale) || 'en';
      locale = WORDS[locale] ? locale : locale.slice(0, 2);
      if (!WORDS[locale]) locale = 'en';
      words = WORDS[locale];
      var color = config && /^#[0-9a-fA-F]{6}$/.test(config.color) ? config.color : '#1a5fd0';
      document.documentElement.style.setProperty('--accent', color);
      document.documentElement.style.setProperty('--on-accent', contrast(color));
      document.body.classList.toggle('left', !!config && config.position === 'LEFT');
      var groups = (config && config.groups) || [];
      var named = groups.filter(function (group) {
        return GROUP && (group.id === GROUP || group.name.toLowerCase() === GROUP.toLowerCase());
      })[0];
      groupId = named ? named.id : GROUP || null;
      applyWords();
    });
  }

  /** Black or white, whichever reads better on the organization's colour. */
  function contrast(hex) {
    var channels = [1, 3, 5].map(function (i) {
      var c = parseInt(hex.slice(i, i + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    var luminance = 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2];
    return luminance > 0.18 ? '#111111' : '#ffffff';
  }

  function onHostMessage(event) {
    if (event.source !== window.parent) return;
    var data = event.data;
    if (!data || data.sb !== 1) return;
    if (data.type === 'page') {
      page = { url: String(data.url || ''), title: String(data.title || ''), referrer: String(data.referrer || '') };
      if (hostReady) hostReady();
      else reportPage();
    } else if (data.type === 'viewport') {
      small = !!data.small;
      document.body.classList.toggle('small', small);
      paintButton();
    } else if (data.type === 'open') {
      setOpen(true);
    } else if (data.type === 'close') {
      setOpen(false);
    } else if (data.type === 'identify') {
      identify(data.who || {});
    } else if (data.type === 'stored' && !ownStorage) {
      hostStored = typeof data.value === 'string' ? data.value : null;
      if (data.changed) storedElsewhere();
      else saved = Object.assign({}, saved, load());
    }
  }

  function identify(person) {
    var next = {
      name: typeof person.name === 'string' ? person.name.slice(0, 100) : undefined,
      email: typeof person.email === 'string' ? person.email.slice(0, 254) : undefined,
      userId: typeof person.userId === 'string' ? person.userId : undefined,
      signature: typeof person.signature === 'string' ? person.signature : undefined,
    };
    var changed = next.userId !== saved.userId || (next.name && next.name !== saved.name) ||
      (next.email && next.email !== saved.email);
    who = next;
    if (changed && booted) {
      var before = saved.visitorId;
      session(true).then(function () {
        if (saved.visitorId !== before) restart();
      }).catch(function () {});
    }
  }

  /** The visitor changed: their own chat, greeting and stream. */
  function restart() {
    leaveChat();
    if (socket) socket.close();
    if (saved.chatId) openChat(saved.chatId, null);
    else refreshAvailability().then(showStartView);
  }

  // Other tabs of this site share the visitor and the chat.
  window.addEventListener('storage', function (event) {
    if (event.key === STORAGE) storedElsewhere();
  });

  function storedElsewhere() {
    var before = saved;
    saved = load();
    if (saved.visitorId !== before.visitorId) return restart();
    if (saved.chatId && (!chat || chat.id !== saved.chatId)) {
      openChat(saved.chatId, null);
    } else if (!saved.chatId && chat && chat.status === 'CLOSED') {
      leaveChat();
      refreshAvailability().then(showStartView);
    } else if (saved.rated && chat && saved.rated === chat.id && view === 'rate') {
      showEnded(true);
    }
  }

  var hostReady = null;
  var booted = false;
  function boot() {
    build();
    applyWords();
    window.addEventListener('message', onHostMessage);
    var pageKnown = new Promise(function (resolve) {
      hostReady = resolve;
      if (!embedded) resolve(null);
      else window.parent.postMessage({ sb: 1, type: 'ready' }, HOST || '*');
      setTimeout(resolve, 1500);
    }).then(function () {
      hostReady = null;
    });
    Promise.all([loadConfig(), pageKnown]).then(function () {
      booted = true;
      var fresh = tokenFresh();
      return session().then(function () {
        if (fresh) reportPage();
      });
    }).then(function () {
      subscribe('visitor', function () {
        return { query: VISITOR_EVENTS };
      }, function (data) {
        onVisitorEvent(data.visitorEvents);
      });
      connect();
      if (saved.chatId) return openChat(saved.chatId, null);
      return refreshAvailability().then(showStartView);
    }).catch(function () {
      if (!refused) return refreshAvailability().then(showStartView);
    }).then(function () {
      document.body.classList.add('ready');
      paintButton();
      tellHost();
    });
    // The button says whether anyone is there; ask again now and then while no chat runs.
    setInterval(function () {
      if (!chat && !document.hidden && !refused) refreshStartView();
    }, 30000);
  }

  boot();
})();
