/* The agent web app: sign in, the Accept chats switch, my chats, the queue, teammates' chats,
 * visitors on the site, offline messages and one chat at a time with its customer's details.
 * It speaks GraphQL over fetch and graphql-transport-ws over WebSocket to /graphql with the
 * agent's access token, keeps the session in localStorage and refreshes it before it expires,
 * and follows `agentEvents` resumed by cursor so nothing is missed across reconnects. Nothing
 * from the server or a customer is ever parsed as HTML.
 */
// @ts-check
(function () {
  'use strict';

  var STORAGE = 'switchboard-app:session';

  // ---- the session --------------------------------------------------------------------------

  /** @typedef {{accessToken: string, refreshToken: string, expiresAt: string}} Session */

  /** @returns {Session | null} */
  function loadSession() {
    try {
      return JSON.parse(localStorage.getItem(STORAGE) || 'null');
    } catch (err) {
      return null;
    }
  }
  var session = loadSession();

  /** @param {Session | null} next */
  function saveSession(next) {
    session = next;
    try {
      if (next) localStorage.setItem(STORAGE, JSON.stringify(next));
      else localStorage.removeItem(STORAGE);
    } catch (err) {
      // Private mode: the session lasts as long as the page.
    }
  }

  /** @param {any} payload @returns {Session} */
  function fromPayload(payload) {
    return {
      accessToken: payload.accessToken,
      refreshToken: payload.refreshToken,
      expiresAt: payload.accessTokenExpiresAt,
    };
  }

  /** @param {Session | null} s */
  function fresh(s) {
    return !!s && Date.parse(s.expiresAt) - Date.now() > 60000;
  }

  // ---- the API ------------------------------------------------------------------------------

  /**
   * @param {string} query @param {object} [variables] @param {string} [token]
   * @returns {Promise<any>}
   */
  function rawGql(query, variables, token) {
    /** @type {Record<string, string>} */
    var headers = { 'Content-Type': 'application/json' };
    if (token) headers.Authorization = 'Bearer ' + token;
    return fetch('/graphql', {
      method: 'POST',
      headers: headers,
      body: JSON.stringify({ query: query, variables: variables || {} }),
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

  var AUTH_FIELDS = 'accessToken refreshToken accessTokenExpiresAt';
  /** @type {Promise<void> | null} */
  var refreshing = null;

  /** A good access token: the kept one, one another tab refreshed, or a refreshed one. */
  function accessToken() {
    if (!session) return Promise.reject(signedOutError());
    if (fresh(session)) return Promise.resolve(session.accessToken);
    // Each refresh token works once: a tab that refreshed already left new tokens behind.
    var kept = loadSession();
    if (kept && fresh(kept)) {
      session = kept;
      return Promise.resolve(kept.accessToken);
    }
    if (!refreshing) {
      var used = session.refreshToken;
      refreshing = rawGql('mutation($t: String!) { refreshToken(refreshToken: $t) { ' + AUTH_FIELDS + ' } }',
        { t: used }).then(function (data) {
        saveSession(fromPayload(data.refreshToken));
      }).catch(function (err) {
        // A network failure keeps the session for later; a refused token ends it.
        if (err.code) {
          var other = loadSession();
          if (!(other && other.refreshToken !== used && fresh(other))) signedOut();
        }
        throw err;
      }).finally(function () {
        refreshing = null;
      });
    }
    return refreshing.then(function () {
      if (!session) throw signedOutError();
      return session.accessToken;
    });
  }

  function signedOutError() {
    var error = /** @type {any} */ (new Error('You are signed out.'));
    error.code = 'UNAUTHENTICATED';
    return error;
  }

  /** An agent's operation, with a refreshed token when the server no longer takes this one. */
  function api(query, variables) {
    return accessToken().then(function (token) {
      return rawGql(query, variables, token);
    }).catch(function (err) {
      if (err.code !== 'UNAUTHENTICATED' || !session) throw err;
      session.expiresAt = new Date(0).toISOString();
      return accessToken().then(function (token) {
        return rawGql(query, variables, token);
      });
    });
  }

  // ---- the live connection (graphql-transport-ws) ---------------------------------------
  // The protocol: graphql-ws's PROTOCOL.md (the same one widget/frame.js speaks).

  /** @type {WebSocket | null} */
  var socket = null;
  var acked = false;
  var attempt = 0;
  var reconnectTimer = 0;
  /** @type {Record<string, {payload: () => object, next: (data: any) => void}>} */
  var subscriptions = {};

  function connect() {
    if (socket || reconnectTimer || !session) return;
    accessToken().then(function (token) {
      if (socket) return;
      var ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host +
        '/graphql', 'graphql-transport-ws');
      socket = ws;
      acked = false;
      ws.onopen = function () {
        send({ type: 'connection_init', payload: { authorization: 'Bearer ' + token } });
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
        } else if (message.type === 'error' && message.id === 'chat') {
          notice('This chat cannot be followed live: ' + ((message.payload || [])[0] || {}).message);
        }
      };
      ws.onclose = function (event) {
        if (socket !== ws) return;
        socket = null;
        acked = false;
        setConnected(false);
        // 4403: the token is no longer good; the next attempt refreshes it first.
        if (event.code === 4403 && session) session.expiresAt = new Date(0).toISOString();
        reconnectLater();
      };
    }).catch(function (err) {
      if (session) reconnectLater();
      else if (err.code === 'UNAUTHENTICATED') signedOut();
    });
  }

  /** Exponential backoff with jitter, so a server restart is not met by every app at once. */
  function reconnectLater() {
    if (reconnectTimer || !session) return;
    var delay = Math.min(30000, 500 * Math.pow(2, attempt)) * (0.5 + Math.random() / 2);
    attempt++;
    reconnectTimer = window.setTimeout(function () {
      reconnectTimer = 0;
      connect();
    }, delay);
  }

  function disconnect() {
    subscriptions = {};
    if (reconnectTimer) clearTimeout(reconnectTimer);
    reconnectTimer = 0;
    var ws = socket;
    socket = null;
    acked = false;
    if (ws) ws.close(1000);
  }

  window.addEventListener('online', function () {
    if (reconnectTimer) {
      clearTimeout(reconnectTimer);
      reconnectTimer = 0;
      attempt = 0;
    }
    connect();
  });

  /** @param {object} message */
  function send(message) {
    if (socket && socket.readyState === 1) socket.send(JSON.stringify(message));
  }

  /** @param {string} id */
  function start(id) {
    if (acked) send({ id: id, type: 'subscribe', payload: subscriptions[id].payload() });
  }

  /** @param {string} id @param {() => object} payload @param {(data: any) => void} next */
  function subscribe(id, payload, next) {
    if (subscriptions[id] && acked) send({ id: id, type: 'complete' });
    subscriptions[id] = { payload: payload, next: next };
    start(id);
  }

  /** @param {string} id */
  function unsubscribe(id) {
    if (!subscriptions[id]) return;
    delete subscriptions[id];
    if (acked) send({ id: id, type: 'complete' });
  }

  // ---- queries --------------------------------------------------------------------------------

  var MESSAGE = 'id cursor chatId kind text author authorId authorName visibility createdAt' +
    ' attachments { id name size isImage url } delivery { state error }';
  var unreadSupported = true;
  function chatRow() {
    return 'id status attention channel createdAt customer { id name email } assignee { id name } group { name }' +
      ' lastMessage { id text author authorName visibility createdAt }' + (unreadSupported ? ' unreadCount' : '');
  }
  var CUSTOMER = 'id name email location ipAddress referrer userAgent visits lastSeenAt' +
    ' currentPage { url title viewedAt } pageHistory(first: 20) { url title viewedAt }';
  var ME = 'id name email role routingStatus reachable';

  function agentEvents() {
    return 'subscription($since: String) { agentEvents(since: $since) { __typename cursor' +
      ' ... on ChatAssigned { reason chat { ' + chatRow() + ' } }' +
      ' ... on ChatTransferred { note toGroupId fromAgent { id name } toAgent { id name } chat { ' + chatRow() + ' } }' +
      ' ... on MessageAdded { chat { id } message { ' + MESSAGE + ' } }' +
      ' ... on ChatClosed { chat { id } }' +
      ' ... on ChatQueued { queueLength chat { id customer { name } } }' +
      ' ... on QueueChanged { queueLength }' +
      ' ... on AttentionChanged { attention chat { id } }' +
      ' ... on RoutingStatusChanged { routingStatus }' +
      ' ... on OfflineMessageReceived { offlineMessage { id name email text handled createdAt ' + OFFLINE_REPLIES + ' } } } }';
  }
  var CHAT_EVENTS = 'subscription($chatId: ID!, $since: String) { chatEvents(chatId: $chatId, since: $since) {' +
    ' __typename cursor ... on MessageAdded { message { ' + MESSAGE + ' } }' +
    ' ... on TypingChanged { author authorId isTyping draft } ... on ChatClosed { chat { id status } } } }';
  var VISITORS = 'subscription { visitorsChanged { snapshot left visitors { customer { id name email }' +
    ' currentPage { url title } onSiteSince visits location referrer state chat { id } greeting { text } } } }';

  // ---- what the app knows -----------------------------------------------------------------

  /**
   * @typedef {{id: string, status: string, attention: string, createdAt: string,
   *   customer: any, assignee: any, group: any, lastMessage: any, unreadCount?: number}} ChatRow
   */
  var state = {
    /** @type {any} */ me: null,
    connected: false,
    tab: 'chats',
    /** @type {string | null} */ chatId: null,
    /** @type {Map<string, ChatRow>} */ chats: new Map(),
    /** @type {any[]} */ queue: [],
    queueLength: 0,
    /** @type {ChatRow[]} */ team: [],
    /** @type {Map<string, any>} */ visitors: new Map(),
    /** @type {any[]} */ offline: [],
    /** @type {any[] | null} */ canned: null,
    /** @type {any[] | null} */ tags: null,
    /** Whether plain agents may read their groups' chats. */ teammates: false,
    /** @type {string | null} */ cursor: null,
  };

  /** The chat on screen. */
  var open = {
    /** @type {any} */ chat: null,
    /** @type {any[]} */ items: [],
    /** @type {string | null} */ startCursor: null,
    hasMore: false,
    loadingOlder: false,
    /** @type {string | null} */ lastCursor: null,
    /** Who else is typing in it: the customer (with the sneak peek) and teammates by id. */
    typing: { customer: false, /** @type {string | null} */ draft: null, /** @type {Map<string, string>} */ agents: new Map() },
  };

  // ---- the page -----------------------------------------------------------------------------

  /**
   * @param {string} tag @param {Record<string, any>} [attrs]
   * @param {Array<Node | string | number | null | undefined | false> | Node | string | number} [children]
   * @returns {any}
   */
  function h(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = /** @type {any} */ (attrs)[name];
      if (value === null || value === undefined || value === false) return;
      if (name.slice(0, 2) === 'on') node.addEventListener(name.slice(2), value);
      else if (name === 'text') node.textContent = value;
      else if (name === 'className') node.className = value;
      else node.setAttribute(name, value === true ? '' : value);
    });
    (Array.isArray(children) ? children : [children]).forEach(function (child) {
      if (child || child === 0) node.append(typeof child === 'object' ? child : String(child));
    });
    return node;
  }

  /** @param {string} id @returns {any} */
  function $(id) {
    return document.getElementById(id);
  }

  /** @param {string} iso */
  function clock(iso) {
    return new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  /** @param {number} seconds */
  function duration(seconds) {
    if (seconds < 60) return Math.max(0, Math.round(seconds)) + ' s';
    if (seconds < 3600) return Math.floor(seconds / 60) + ' min';
    return Math.floor(seconds / 3600) + ' h ' + Math.floor((seconds % 3600) / 60) + ' min';
  }

  /** @param {any} customer */
  function customerName(customer) {
    return (customer && (customer.name || customer.email)) || 'Visitor';
  }

  var noticeTimer = 0;
  /** Shows (and says) what happened, for a while. @param {string} text */
  function notice(text) {
    var box = $('notice');
    if (!box) return;
    box.replaceChildren(h('span', {}, text), h('button', { type: 'button', className: 'quiet small', onclick: dismissNotice }, 'Dismiss'));
    box.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = window.setTimeout(dismissNotice, 15000);
  }

  function dismissNotice() {
    var box = $('notice');
    if (box) box.hidden = true;
  }

  /** @param {any} err */
  function reason(err) {
    return (err && err.message ? String(err.message) : 'no connection').replace(/\.+$/, '');
  }

  /** @param {any} err */
  function failed(err) {
    notice('That did not work: ' + reason(err) + '.');
  }

  // ---- announcing: sound, title, badge, screen reader -----------------------------------

  /** @type {AudioContext | null} */
  var audio = null;
  function unlockAudio() {
    // Browsers let a page make sound only after the person has interacted with it.
    if (!audio && window.AudioContext) audio = new AudioContext();
  }
  document.addEventListener('pointerdown', unlockAudio);
  document.addEventListener('keydown', unlockAudio);

  /** Two short tones, made on the spot: no audio file to load. */
  function chime() {
    if (!audio) return;
    var now = audio.currentTime;
    [880, 660].forEach(function (frequency, i) {
      var tone = audio.createOscillator();
      var gain = audio.createGain();
      tone.frequency.value = frequency;
      var at = now + i * 0.16;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.2, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.15);
      tone.connect(gain).connect(audio.destination);
      tone.start(at);
      tone.stop(at + 0.16);
    });
  }

  /** @param {string} text @param {boolean} [sound] */
  function announce(text, sound) {
    var box = $('announcer');
    box.textContent = '';
    window.setTimeout(function () {
      box.textContent = text;
    }, 50);
    if (sound) chime();
    updateCounts();
  }

  function unreadTotal() {
    var total = 0;
    state.chats.forEach(function (chat) {
      total += chat.unreadCount || 0;
    });
    return total;
  }

  /** The title and the home-screen badge count what waits: unread messages. */
  function updateCounts() {
    var total = unreadTotal();
    document.title = (total ? '(' + total + ') ' : '') + 'Switchboard';
    var nav = /** @type {any} */ (navigator);
    if (nav.setAppBadge) {
      (total ? nav.setAppBadge(total) : nav.clearAppBadge()).catch(function () {});
    }
    if (state.me) renderNav();
  }

  // ---- sign in ------------------------------------------------------------------------------

  function renderSignIn(message) {
    document.title = 'Sign in · Switchboard';
    var error = h('p', { id: 'sign-in-error', className: 'error', role: 'alert' }, message || '');
    var form = h('form', { className: 'sign-in', 'aria-labelledby': 'sign-in-title' }, [
      h('img', { src: 'icon.svg', alt: '', width: '56', height: '56' }),
      h('h1', { id: 'sign-in-title' }, 'Sign in to Switchboard'),
      h('label', { for: 'email' }, 'Email'),
      h('input', { id: 'email', type: 'email', autocomplete: 'username', required: true }),
      h('label', { for: 'password' }, 'Password'),
      h('input', { id: 'password', type: 'password', autocomplete: 'current-password', required: true }),
      error,
      h('button', { type: 'submit', className: 'primary' }, 'Sign in'),
    ]);
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var button = form.querySelector('button');
      button.disabled = true;
      error.textContent = '';
      rawGql('mutation($input: LoginInput!) { login(input: $input) { ' + AUTH_FIELDS + ' agent { ' + ME + ' } } }', {
        input: { email: $('email').value.trim(), password: $('password').value },
      }).then(function (data) {
        saveSession(fromPayload(data.login));
        signedIn(data.login.agent);
      }).catch(function (err) {
        button.disabled = false;
        error.textContent = err.code === 'UNAUTHENTICATED' || err.code === 'BAD_USER_INPUT'
          ? 'The email or the password is not right.'
          : 'Signing in did not work: ' + err.message;
      });
    });
    $('root').replaceChildren(h('main', { id: 'main', className: 'center', tabindex: '-1' }, [form]));
    $('email').focus();
  }

  /** @param {string} [message] */
  function signedOut(message) {
    saveSession(null);
    disconnect();
    everConnected = false;
    state.connected = false;
    state.cursor = null;
    state.me = null;
    state.chats.clear();
    open.chat = null;
    updateCounts();
    renderSignIn(message === undefined ? 'You were signed out. Please sign in again.' : message);
  }

  function signOut() {
    var ending = pushSubscription().then(function (subscription) {
      if (!subscription) return null;
      return api('mutation($t: String!) { unregisterPushDevice(token: $t) }', { t: subscription.endpoint })
        .catch(function () {}).then(function () {
          return subscription.unsubscribe();
        });
    }).catch(function () {}).then(function () {
      return api('mutation { logout }');
    });
    ending.catch(function () {}).then(function () {
      signedOut('');
    });
  }

  // ---- after signing in -----------------------------------------------------------------

  /** @param {any} me */
  function signedIn(me) {
    state.me = me;
    renderShell();
    route();
    probeUnread().then(function () {
      return api('{ agentEventsCursor }');
    }).then(function (data) {
      if (!state.cursor) state.cursor = data.agentEventsCursor;
      subscribe('events', function () {
        return { query: agentEvents(), variables: { since: state.cursor } };
      }, onAgentEvent);
      subscribe('visitors', function () {
        return { query: VISITORS };
      }, onVisitors);
      connect();
      return reloadLists();
    }).catch(failed);
  }

  /**
   * Unread counts came with a later server version: an older one refuses the field, and the
   * app then counts what arrives while it is open.
   */
  function probeUnread() {
    return api('{ myChats { unreadCount } }').then(function () {
      unreadSupported = true;
    }, function (err) {
      if (err.code === 'UNAUTHENTICATED') throw err;
      unreadSupported = !/unreadCount/.test(err.message);
    });
  }

  function reloadLists() {
    return Promise.all([loadChats(), loadQueue(), loadOffline(), refreshMe(),
      loadTeammatesSetting().then(loadTeamIfAllowed)]);
  }

  function refreshMe() {
    return api('{ me { ' + ME + ' } }').then(function (data) {
      state.me = data.me;
      renderHeader();
    });
  }

  function loadChats() {
    return api('{ myChats { ' + chatRow() + ' } }').then(function (data) {
      state.chats = new Map(data.myChats.map(function (/** @type {ChatRow} */ chat) {
        var known = state.chats.get(chat.id);
        if (!unreadSupported) chat.unreadCount = known ? known.unreadCount : 0;
        return [chat.id, chat];
      }));
      updateCounts();
      renderList();
    });
  }

  function loadQueue() {
    return api('{ queue { position waitSeconds estimatedWaitSeconds chat { id createdAt customer { name email }' +
      ' group { name } lastMessage { text } } } }').then(function (data) {
      state.queue = data.queue;
      state.queueLength = data.queue.length;
      renderNav();
      if (state.tab === 'queue') renderList();
    });
  }

  function loadTeam() {
    return api('{ teamChats { ' + chatRow() + ' } }').then(function (data) {
      state.team = data.teamChats;
      if (state.tab === 'team') renderList();
    }, function () {
      state.team = [];
    });
  }

  function loadOffline() {
    return api('{ offlineMessages { id name email text handled createdAt ' + OFFLINE_REPLIES + ' } }').then(function (data) {
      state.offline = data.offlineMessages;
      renderNav();
      if (state.tab === 'offline') renderList();
    });
  }

  /** @type {Record<string, number>} */
  var pending = {};
  /** Runs `work` once shortly, however many events ask for it meanwhile. @param {string} key @param {() => any} work */
  function soon(key, work) {
    if (pending[key]) return;
    pending[key] = window.setTimeout(function () {
      pending[key] = 0;
      Promise.resolve(work()).catch(function () {});
    }, 250);
  }

  /** @param {any} data */
  function onAgentEvent(data) {
    var event = data.agentEvents;
    state.cursor = event.cursor;
    var chat = event.chat;
    switch (event.__typename) {
      case 'ChatAssigned':
        // A replayed event carries the chat as it is now: one since closed or passed on is not news.
        if (upsertChat(chat)) announce('New chat from ' + customerName(chat.customer) + '.', true);
        soon('queue', loadQueue);
        break;
      case 'ChatTransferred':
        if (event.toAgent && state.me && event.toAgent.id === state.me.id && upsertChat(chat)) {
          announce('Chat with ' + customerName(chat.customer) + ' transferred to you' +
            (event.fromAgent ? ' by ' + event.fromAgent.name : '') + (event.note ? ': ' + event.note : '.'), true);
        } else {
          soon('chats', loadChats);
        }
        soon('team', loadTeamIfAllowed);
        break;
      case 'MessageAdded':
        onMessage(event.message);
        break;
      case 'ChatClosed':
        state.chats.delete(chat.id);
        updateCounts();
        renderList();
        soon('team', loadTeamIfAllowed);
        break;
      case 'ChatQueued':
        announce(customerName(chat.customer) + ' is waiting in the queue.');
      // falls through
      case 'QueueChanged':
        state.queueLength = event.queueLength;
        renderNav();
        soon('queue', loadQueue);
        soon('team', loadTeamIfAllowed);
        break;
      case 'AttentionChanged':
        var row = state.chats.get(chat.id);
        if (row) {
          row.attention = event.attention;
          renderList();
        }
        if (open.chat && open.chat.id === chat.id) {
          open.chat.attention = event.attention;
          renderChatHead();
        }
        break;
      case 'RoutingStatusChanged':
        if (state.me) state.me.routingStatus = event.routingStatus;
        renderHeader();
        soon('me', refreshMe);
        break;
      case 'OfflineMessageReceived':
        state.offline = [event.offlineMessage].concat(state.offline.filter(function (m) {
          return m.id !== event.offlineMessage.id;
        }));
        renderNav();
        if (state.tab === 'offline') renderList();
        if (!event.offlineMessage.handled) announce('Offline message from ' + event.offlineMessage.name + '.');
        break;
    }
  }

  function loadTeamIfAllowed() {
    return state.me && (state.me.role !== 'AGENT' || state.teammates) ? loadTeam() : null;
  }

  /**
   * Puts a chat in my list when it is still mine and open; says whether it did.
   * @param {ChatRow} chat @param {boolean} [joined] a chat I joined, someone else's
   */
  function upsertChat(chat, joined) {
    var mineNow = chat.status !== 'CLOSED' && (joined || (chat.assignee && state.me && chat.assignee.id === state.me.id));
    if (!mineNow) {
      if (state.chats.delete(chat.id)) renderList();
      return false;
    }
    var known = state.chats.get(chat.id);
    if (!unreadSupported) chat.unreadCount = known ? known.unreadCount : 0;
    state.chats.set(chat.id, chat);
    updateCounts();
    renderList();
    return true;
  }

  /** A message in one of my chats, from agentEvents. @param {any} message */
  function onMessage(message) {
    var chat = state.chats.get(message.chatId);
    if (!chat) {
      if (message.kind === 'MESSAGE' || message.kind === 'AGENT_ASSIGNED') soon('chats', loadChats);
      return;
    }
    var last = chat.lastMessage;
    var newer = !last || (last.id !== message.id && Date.parse(message.createdAt) >= Date.parse(last.createdAt));
    if (!newer || message.kind !== 'MESSAGE') return;
    chat.lastMessage = message;
    var reading = open.chat && open.chat.id === chat.id && !document.hidden;
    // A teammate's note (a supervisor's whisper) is unread too, as the server counts it.
    var whisper = message.visibility === 'AGENTS' && message.author === 'AGENT' && message.authorId !== state.me.id;
    if (message.author === 'CUSTOMER' || whisper) {
      if (reading) markRead(chat.id);
      else {
        chat.unreadCount = (chat.unreadCount || 0) + 1;
        announce((whisper ? 'Note from ' + (message.authorName || 'a teammate') : 'New message from ' +
          customerName(chat.customer)) + ': ' + message.text, true);
      }
    }
    updateCounts();
    renderList();
  }

  /** @param {string} chatId */
  function markRead(chatId) {
    var chat = state.chats.get(chatId);
    if (chat) chat.unreadCount = 0;
    updateCounts();
    renderList();
    if (!unreadSupported) return;
    soon('read:' + chatId, function () {
      return api('mutation($id: ID!) { markChatRead(chatId: $id) { id } }', { id: chatId });
    });
  }

  document.addEventListener('visibilitychange', function () {
    if (!document.hidden && open.chat && state.chats.has(open.chat.id)) markRead(open.chat.id);
  });

  /** @param {any} data */
  function onVisitors(data) {
    var update = data.visitorsChanged;
    if (update.snapshot) state.visitors.clear();
    update.left.forEach(function (/** @type {string} */ id) {
      state.visitors.delete(id);
    });
    update.visitors.forEach(function (/** @type {any} */ visitor) {
      state.visitors.set(visitor.customer.id, visitor);
    });
    renderNav();
    if (state.tab === 'visitors') renderList();
    // The open chat's customer may have moved to another page.
    if (open.chat) {
      var seen = state.visitors.get(open.chat.customer.id);
      if (seen && seen.currentPage && (!open.chat.customer.currentPage ||
        open.chat.customer.currentPage.url !== seen.currentPage.url)) {
        soon('details', reloadDetails);
      }
    }
  }

  var everConnected = false;
  /** @param {boolean} connected */
  function setConnected(connected) {
    var was = state.connected;
    state.connected = connected;
    if (!state.me) return;
    renderHeader();
    if (!connected || was) return;
    // Connected, the server counts the agent reachable: show the status as it is now.
    soon('me', refreshMe);
    // Back after a loss: the events were replayed from the cursor; the lists and the open
    // chat catch up on what is not sent as an event (the queue's order, the pages viewed).
    if (everConnected) {
      soon('lists', reloadLists);
      soon('details', reloadDetails);
    }
    everConnected = true;
  }

  // ---- the shell ----------------------------------------------------------------------------

  var TABS = [
    { id: 'chats', label: 'My chats' },
    { id: 'queue', label: 'Queue' },
    { id: 'team', label: 'Team chats' },
    { id: 'visitors', label: 'Visitors' },
    { id: 'offline', label: 'Offline messages' },
    { id: 'canned', label: 'Canned responses' },
    { id: 'tags', label: 'Tags' },
    { id: 'archive', label: 'Archive' },
    { id: 'reports', label: 'Reports' },
    { id: 'webhooks', label: 'Webhooks' },
    { id: 'messenger', label: 'Messenger' },
  ];

  function renderShell() {
    var canPush = 'serviceWorker' in navigator && 'PushManager' in window;
    $('root').replaceChildren(
      h('header', { className: 'top' }, [
        h('span', { className: 'brand' }, [h('img', { src: 'icon.svg', alt: '', width: '28', height: '28' }), 'Switchboard']),
        h('div', { className: 'status' }, [
          h('button', {
            id: 'accept', type: 'button', role: 'switch', 'aria-checked': 'false',
            'aria-describedby': 'status-text', onclick: toggleAccepting,
          }, [h('span', { className: 'track', 'aria-hidden': 'true' }), 'Accept chats']),
          h('span', { id: 'status-text', className: 'status-text', 'aria-live': 'polite' }),
        ]),
        h('div', { className: 'account' }, [
          canPush ? h('button', { id: 'notify', type: 'button', className: 'quiet', onclick: enablePush },
            ['Notify me', h('span', { className: 'long' }, ' when the app is closed')]) : null,
          h('span', { id: 'me-name', className: 'me' }),
          h('button', { type: 'button', className: 'quiet', onclick: signOut }, 'Sign out'),
        ]),
      ]),
      h('div', { className: 'layout', id: 'layout' }, [
        h('nav', { 'aria-label': 'Sections', className: 'tabs', id: 'tabs' }),
        h('main', { id: 'main', tabindex: '-1' }, [
          h('p', { id: 'notice', className: 'notice', role: 'status', hidden: true }),
          h('section', { className: 'list', id: 'list', 'aria-labelledby': 'list-title' }),
          h('section', { className: 'chat', id: 'chat', 'aria-labelledby': 'chat-title' }),
        ]),
        h('aside', { className: 'details', id: 'details', 'aria-label': 'Customer details' }),
      ]),
      transferDialog(),
      greetingDialog(),
      cannedDialog(),
    );
    renderHeader();
    renderNav();
    pushSubscription().then(function (subscription) {
      if (subscription && $('notify')) $('notify').hidden = true;
    }).catch(function () {});
  }

  function renderHeader() {
    var me = state.me;
    if (!me || !$('accept')) return;
    var accepting = me.routingStatus === 'ACCEPTING_CHATS';
    $('accept').setAttribute('aria-checked', String(accepting));
    var text;
    var tone = 'off';
    if (!state.connected) {
      text = 'Connecting…';
    } else if (accepting && !me.reachable) {
      // The truth, not the wish: the server routes nothing to an agent it cannot reach.
      text = 'Accepting, but unreachable: no chats can reach you';
      tone = 'warn';
    } else if (accepting) {
      text = 'Accepting chats';
      tone = 'on';
    } else if (me.routingStatus === 'OFFLINE') {
      text = 'Offline';
    } else {
      text = 'Don\'t accept chats: you can still monitor';
    }
    var status = $('status-text');
    if (status.textContent !== text) status.textContent = text;
    status.dataset.tone = tone;
    $('me-name').textContent = me.name;
    // An empty list of chats says what to do, which depends on the status.
    if (me.routingStatus !== shownStatus) {
      shownStatus = me.routingStatus;
      if (state.tab === 'chats') renderList();
    }
  }
  var shownStatus = '';

  function toggleAccepting() {
    var button = $('accept');
    var next = button.getAttribute('aria-checked') === 'true' ? 'NOT_ACCEPTING_CHATS' : 'ACCEPTING_CHATS';
    button.disabled = true;
    api('mutation($s: RoutingStatus!) { setRoutingStatus(status: $s) { ' + ME + ' } }', { s: next })
      .then(function (data) {
        state.me = data.setRoutingStatus;
        renderHeader();
      }).catch(failed).finally(function () {
        button.disabled = false;
        button.focus();
      });
  }

  function renderNav() {
    var nav = $('tabs');
    if (!nav || !state.me) return;
    /** @type {Record<string, number>} */
    var counts = {
      chats: unreadTotal(),
      queue: state.queueLength,
      visitors: state.visitors.size,
      offline: state.offline.filter(function (m) {
        return !m.handled;
      }).length,
    };
    var labels = {
      chats: 'unread', queue: 'waiting', visitors: 'on the site', offline: 'not handled',
    };
    nav.replaceChildren(h('ul', {}, TABS.filter(function (tab) {
      if (tab.id === 'webhooks') return shareable();
      return tab.id === 'tags' || tab.id === 'messenger' ? shareable() : tab.id !== 'team' || state.me.role !== 'AGENT' || state.teammates;
    }).map(function (tab) {
      var count = counts[tab.id] || 0;
      // On a desk the open chat stays beside the other lists; My chats leads back to it.
      var back = tab.id === 'chats' && open.chat && !phone() ? '/' + encodeURIComponent(open.chat.id) : '';
      return h('li', {}, [h('a', {
        href: '#/' + tab.id + back,
        'aria-current': state.tab === tab.id ? 'page' : null,
      }, [tab.label, count ? h('span', { className: 'count' }, [
        String(count), h('span', { className: 'visually-hidden' }, ' ' + labels[tab.id]),
      ]) : null])]);
    })));
  }

  // ---- routing ------------------------------------------------------------------------------

  /** Whether the phone layout (one column) is showing; app.css switches at the same width. */
  function phone() {
    return window.matchMedia('(max-width: 760px)').matches;
  }

  function route() {
    var parts = location.hash.replace(/^#\/?/, '').split('/');
    var tab = TABS.some(function (t) {
      return t.id === parts[0];
    }) ? parts[0] : 'chats';
    var chatId = tab === 'chats' && parts[1] ? decodeURIComponent(parts[1]) : null;
    var tabChanged = tab !== state.tab;
    state.tab = tab;
    var layout = $('layout');
    if (!layout) return;
    // On a desk another list opens beside the chat; on a phone, where one shows at a time,
    // leaving the chat closes it (nothing is marked read out of sight).
    var keep = !chatId && tab !== 'chats' && tab !== 'reports' && tab !== 'webhooks' && !!open.chat && !phone();
    if (chatId && (chatId !== state.chatId || !open.chat)) openChat(chatId);
    if (!chatId && !keep) {
      state.chatId = null;
      closeChatView();
    }
    layout.dataset.view = chatId ? 'chat' : 'list';
    layout.dataset.tab = tab;
    renderNav();
    renderList();
    if (tabChanged && tab === 'team') loadTeam().catch(failed);
    if (tabChanged && tab === 'queue') loadQueue().catch(failed);
    if (tabChanged && tab === 'canned') loadCanned();
    if (tabChanged && tab === 'tags') loadTags().catch(failed);
    if (tabChanged && tab === 'archive' && !archive.loaded) loadArchive(false);
    if (tabChanged && tab === 'reports' && reports.from) loadReport();
    if (tabChanged && tab === 'webhooks') loadWebhooks();
    if (tabChanged && tab === 'messenger') loadMessengerPages();
  }
  window.addEventListener('hashchange', function () {
    if (state.me) route();
  });

  // ---- the lists ----------------------------------------------------------------------------

  function renderList() {
    var section = $('list');
    if (!section || !state.me) return;
    var title = (TABS.find(function (t) {
      return t.id === state.tab;
    }) || TABS[0]).label;
    // Keep the keyboard where it was when the list is drawn again.
    var focused = document.activeElement && section.contains(document.activeElement)
      ? document.activeElement.getAttribute('data-key') : null;
    var body;
    if (state.tab === 'queue') body = queueList();
    else if (state.tab === 'team') body = teamList();
    else if (state.tab === 'visitors') body = visitorList();
    else if (state.tab === 'offline') body = offlineList();
    else if (state.tab === 'canned') body = cannedList();
    else if (state.tab === 'tags') body = tagsScreen();
    else if (state.tab === 'archive') body = archiveList();
    else if (state.tab === 'reports') body = reportsScreen();
    else if (state.tab === 'webhooks') body = webhooksScreen();
    else if (state.tab === 'messenger') body = messengerScreen();
    else body = myChatList();
    section.replaceChildren(h('h2', { id: 'list-title' }, title), body);
    if (focused) {
      var again = section.querySelector('[data-key="' + CSS.escape(focused) + '"]');
      if (again) again.focus();
    }
  }

  /** @param {string} text */
  function empty(text) {
    return h('p', { className: 'empty' }, text);
  }

  /** The circle: red when the customer waits too long, grey when they went quiet. @param {string} attention */
  function circle(attention) {
    var words = { WAITING_LONG: 'Waiting long', CUSTOMER_IDLE: 'Customer idle', NORMAL: 'Active' };
    return h('span', { className: 'circle ' + attention.toLowerCase(), role: 'img', 'aria-label': words[attention] || attention });
  }

  /** @param {any} message */
  function preview(message) {
    if (!message) return '';
    var who = message.visibility === 'AGENTS' ? 'Note: ' : message.author === 'AGENT' ? 'You: ' : '';
    return who + message.text;
  }

  function myChatList() {
    var chats = Array.from(state.chats.values());
    if (!chats.length) {
      return empty(state.me.routingStatus === 'ACCEPTING_CHATS'
        ? 'No chats yet. New ones appear here.'
        : 'No chats. Switch on Accept chats to get new ones.');
    }
    return h('ul', { className: 'rows', 'aria-label': 'My chats' }, chats.map(function (chat) {
      var unread = chat.unreadCount || 0;
      return h('li', {}, [h('a', {
        href: '#/chats/' + encodeURIComponent(chat.id),
        className: 'row' + (unread ? ' unread' : ''),
        'data-key': 'chat:' + chat.id,
        'aria-current': state.chatId === chat.id ? 'true' : null,
      }, [
        circle(chat.attention),
        h('span', { className: 'who' }, [customerName(chat.customer), channelBadge(chat)]),
        h('span', { className: 'when' }, [
          unread ? h('span', { className: 'count' }, [String(unread), h('span', { className: 'visually-hidden' }, ' unread')]) : null,
          chat.lastMessage ? h('time', { datetime: chat.lastMessage.createdAt }, clock(chat.lastMessage.createdAt)) : null,
        ]),
        h('span', { className: 'last' }, preview(chat.lastMessage)),
      ])]);
    }));
  }

  function queueList() {
    if (!state.queue.length) return empty('Nobody is waiting.');
    return h('ul', { className: 'rows', 'aria-label': 'Waiting customers' }, state.queue.map(function (entry) {
      var chat = entry.chat;
      return h('li', { className: 'row' }, [
        h('span', { className: 'position', 'aria-label': 'Number ' + entry.position }, String(entry.position)),
        h('span', { className: 'who' }, customerName(chat.customer)),
        h('span', { className: 'when' }, 'waits ' + duration(entry.waitSeconds)),
        h('span', { className: 'last' }, (chat.group ? chat.group.name + ' · ' : '') + preview(chat.lastMessage)),
        h('button', {
          type: 'button', className: 'primary small', 'data-key': 'pick:' + chat.id,
          'aria-label': 'Pick ' + customerName(chat.customer),
          onclick: function (/** @type {any} */ event) {
            event.currentTarget.disabled = true;
            api('mutation($id: ID!) { takeChat(chatId: $id) { ' + chatRow() + ' } }', { id: chat.id }).then(function (data) {
              upsertChat(data.takeChat);
              location.hash = '#/chats/' + encodeURIComponent(chat.id);
              soon('queue', loadQueue);
            }).catch(function (err) {
              failed(err);
              soon('queue', loadQueue);
            });
          },
        }, 'Pick'),
      ]);
    }));
  }

  function teamList() {
    var chats = state.team.filter(function (chat) {
      return !chat.assignee || chat.assignee.id !== state.me.id;
    });
    if (!chats.length) return empty('Your teammates have no chats now.');
    return h('ul', { className: 'rows', 'aria-label': 'Team chats' }, chats.map(function (chat) {
      return h('li', { className: 'row' }, [
        circle(chat.attention),
        h('a', { href: '#/chats/' + encodeURIComponent(chat.id), className: 'who', 'data-key': 'team:' + chat.id }, customerName(chat.customer)),
        h('span', { className: 'when' }, chat.assignee ? 'with ' + chat.assignee.name : 'queued'),
        h('span', { className: 'last' }, preview(chat.lastMessage)),
        state.me.role === 'AGENT' ? null : h('button', {
          type: 'button', className: 'small', 'aria-label': 'Join the chat with ' + customerName(chat.customer),
          onclick: function () {
            joinChat(chat.id);
          },
        }, 'Join'),
      ]);
    }));
  }

  /** @param {string} chatId */
  function joinChat(chatId) {
    api('mutation($id: ID!) { joinChat(chatId: $id) { ' + chatRow() + ' } }', { id: chatId }).then(function (data) {
      upsertChat(data.joinChat, true);
      announce('You joined the chat.');
      location.hash = '#/chats/' + encodeURIComponent(chatId);
    }).catch(failed);
  }

  function visitorList() {
    var visitors = Array.from(state.visitors.values()).sort(function (a, b) {
      return Date.parse(a.onSiteSince) - Date.parse(b.onSiteSince);
    });
    if (!visitors.length) return empty('Nobody is on the site now.');
    var states = { BROWSING: 'Browsing', INVITED: 'Greeted', QUEUED: 'Queued', CHATTING: 'Chatting' };
    return h('ul', { className: 'rows', 'aria-label': 'Visitors on the site' }, visitors.map(function (visitor) {
      var page = visitor.currentPage;
      return h('li', { className: 'row' }, [
        h('span', { className: 'who' }, customerName(visitor.customer)),
        h('span', { className: 'when' }, [
          states[visitor.state] || visitor.state, ' · ',
          h('span', { className: 'since', 'data-since': visitor.onSiteSince }, duration((Date.now() - Date.parse(visitor.onSiteSince)) / 1000)),
        ]),
        h('span', { className: 'last', title: page ? page.url : null }, (page ? (page.title ? page.title + ' — ' : '') + page.url : '') +
          (visitor.visits > 1 ? ' · visit ' + visitor.visits : '') + (visitor.location ? ' · ' + visitor.location : '')),
        visitor.state === 'BROWSING' ? h('button', {
          type: 'button', className: 'small', 'data-key': 'greet:' + visitor.customer.id,
          'aria-label': 'Greet ' + customerName(visitor.customer),
          onclick: function () {
            openGreeting(visitor);
          },
        }, 'Greet') : null,
        visitor.chat ? h('a', { href: '#/chats/' + encodeURIComponent(visitor.chat.id), className: 'small' }, 'Open chat') : null,
      ]);
    }));
  }

  // Times on the site count on between updates (the server sends none for time passing).
  window.setInterval(function () {
    document.querySelectorAll('[data-since]').forEach(function (node) {
      node.textContent = duration((Date.now() - Date.parse(node.getAttribute('data-since') || '')) / 1000);
    });
  }, 15000);

  function offlineList() {
    if (!state.offline.length) return empty('No offline messages.');
    return h('ul', { className: 'rows', 'aria-label': 'Offline messages' }, state.offline.map(function (message) {
      return h('li', { className: 'row offline' + (message.handled ? ' handled' : '') }, [
        h('span', { className: 'who' }, message.name),
        h('time', { className: 'when', datetime: message.createdAt }, new Date(message.createdAt).toLocaleString()),
        h('span', { className: 'last' }, message.email),
        h('p', { className: 'text' }, message.text),
        h('button', {
          type: 'button', className: 'small', 'data-key': 'offline:' + message.id,
          'aria-label': (message.handled ? 'Mark not handled: ' : 'Mark handled: ') + message.name,
          onclick: function () {
            api('mutation($id: ID!, $h: Boolean!) { markOfflineMessageHandled(id: $id, handled: $h) { id handled } }',
              { id: message.id, h: !message.handled }).then(function (data) {
              message.handled = data.markOfflineMessageHandled.handled;
              renderNav();
              renderList();
            }).catch(failed);
          },
        }, message.handled ? 'Mark not handled' : 'Mark handled'),
        offlineReplies(message),
      ]);
    }));
  }

  // ---- one chat -----------------------------------------------------------------------------

  function closeChatView() {
    unsubscribe('chat');
    open.chat = null;
    var section = $('chat');
    if (section) {
      section.replaceChildren(h('h2', { id: 'chat-title', className: 'visually-hidden' }, 'No chat open'),
        empty('Pick a chat from the list.'));
    }
    var details = $('details');
    if (details) details.replaceChildren();
  }

  /** @param {string} chatId */
  function openChat(chatId) {
    state.chatId = chatId;
    unsubscribe('chat');
    open.chat = null;
    open.items = [];
    open.typing = { customer: false, draft: null, agents: new Map() };
    var section = $('chat');
    section.replaceChildren(h('h2', { id: 'chat-title', tabindex: '-1' }, 'Loading the chat…'));
    api('query($id: ID!) { chat(id: $id) { ' + chatRow() + ' channel customer { ' + CUSTOMER + ' }' +
      ' tags { ' + TAG + ' } latestEvents(last: 30) { items { ' + MESSAGE + ' } startCursor hasMore } } }', { id: chatId })
      .then(function (data) {
        if (state.chatId !== chatId) return;
        var chat = data.chat;
        open.chat = chat;
        renderNav();
        open.items = chat.latestEvents.items;
        open.startCursor = chat.latestEvents.startCursor;
        open.hasMore = chat.latestEvents.hasMore;
        open.lastCursor = open.items.length ? open.items[open.items.length - 1].cursor : null;
        renderChat();
        renderDetails();
        // On a phone the list that had the focus is gone: start the reader at the chat.
        var focused = /** @type {HTMLElement | null} */ (document.activeElement);
        if (!focused || focused === document.body || !focused.offsetParent) $('chat-title').focus();
        if (state.chats.has(chatId)) markRead(chatId);
        subscribe('chat', function () {
          return { query: CHAT_EVENTS, variables: { chatId: chatId, since: open.lastCursor } };
        }, onChatEvent);
      }).catch(function (err) {
        section.replaceChildren(h('h2', { id: 'chat-title' }, 'This chat cannot be opened'),
          h('p', { className: 'error' }, err.message));
      });
  }

  function reloadDetails() {
    if (!open.chat) return null;
    var id = open.chat.id;
    return api('query($id: ID!) { chat(id: $id) { customer { ' + CUSTOMER + ' } } }', { id: id }).then(function (data) {
      if (!open.chat || open.chat.id !== id) return;
      open.chat.customer = data.chat.customer;
      renderDetails();
    });
  }

  function mine() {
    return open.chat && open.chat.assignee && state.me && open.chat.assignee.id === state.me.id;
  }

  function renderChat() {
    var chat = open.chat;
    var closed = chat.status === 'CLOSED';
    var log = h('div', { id: 'log', className: 'log', role: 'log', 'aria-label': 'Conversation', tabindex: '0' });
    log.addEventListener('scroll', function () {
      if (log.scrollTop < 80) loadOlder();
    });
    // A combobox (ARIA 1.2): typing #word suggests canned responses in the listbox below.
    var reply = h('textarea', {
      id: 'reply', rows: '2', placeholder: 'Write a reply… (# for canned responses)', 'aria-describedby': 'reply-hint',
      role: 'combobox', 'aria-autocomplete': 'list', 'aria-expanded': 'false', 'aria-controls': 'suggestions',
    });
    reply.addEventListener('input', function () {
      typing();
      suggest();
    });
    reply.addEventListener('blur', function () {
      closeSuggestions();
    });
    reply.addEventListener('keydown', function (/** @type {KeyboardEvent} */ event) {
      if (suggestionKey(event)) return;
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        sendReply();
      }
    });
    var composer = h('form', { className: 'composer', 'aria-label': 'Reply' }, [
      h('label', { for: 'reply', className: 'visually-hidden' }, 'Reply'),
      reply,
      h('ul', {
        id: 'suggestions', className: 'suggestions', role: 'listbox', 'aria-label': 'Canned responses', hidden: true,
        // The reply box keeps the focus (and the list stays open) while the mouse picks.
        onmousedown: function (/** @type {Event} */ event) {
          event.preventDefault();
        },
      }),
      h('span', { id: 'reply-hint', className: 'visually-hidden' },
        'Enter sends; Shift+Enter starts a new line; # and a shortcut suggest canned responses.'),
      noteToggle(),
      attachControl(),
      h('button', { type: 'submit', className: 'primary', id: 'send' }, 'Send'),
    ]);
    composer.addEventListener('submit', function (/** @type {Event} */ event) {
      event.preventDefault();
      sendReply();
    });
    $('chat').replaceChildren(
      h('div', { className: 'chat-head', id: 'chat-head' }),
      h('div', { className: 'chat-tags', id: 'chat-tags' }),
      h('button', { type: 'button', id: 'older', className: 'quiet small older', hidden: !open.hasMore, onclick: loadOlder }, 'Show older messages'),
      log,
      h('p', { id: 'peek', className: 'peek', hidden: true }),
      closed ? h('p', { className: 'closed' }, 'This chat is closed.') : readOnly() ? h('p', { className: 'closed' },
        'A teammate\'s chat: you may read it, not write in it.') : composer,
    );
    renderChatHead();
    renderChatTags();
    if (!closed && !mayAnswer() && state.me.role !== 'AGENT') setNoting(true);
    open.items.forEach(function (item) {
      log.append(messageNode(item));
    });
    log.scrollTop = log.scrollHeight;
  }

  function renderChatHead() {
    var chat = open.chat;
    var head = $('chat-head');
    if (!chat || !head) return;
    var closed = chat.status === 'CLOSED';
    head.replaceChildren(
      h('a', { href: '#/' + (state.tab === 'chats' ? 'chats' : state.tab), className: 'back' }, [h('span', { 'aria-hidden': 'true' }, '‹ '), 'Back']),
      circle(chat.attention),
      h('h2', { id: 'chat-title', tabindex: '-1' }, customerName(chat.customer)),
      channelBadge(chat),
      h('span', { className: 'chat-state' }, closed ? 'closed' : chat.assignee && !mine() ? 'with ' + chat.assignee.name : ''),
      h('div', { className: 'actions' }, [
        h('button', {
          type: 'button', className: 'small details-toggle', onclick: toggleDetails, 'aria-controls': 'details',
          'aria-pressed': String($('layout').dataset.view === 'details'),
        }, 'Details'),
        !closed && !mine() && state.me.role !== 'AGENT' ? h('button', { type: 'button', className: 'small', onclick: function () {
          joinChat(chat.id);
        } }, 'Join') : null,
        !closed && !readOnly() ? h('button', { type: 'button', className: 'small', id: 'transfer-open', onclick: openTransfer }, 'Transfer') : null,
        !closed && !readOnly() ? h('button', { type: 'button', className: 'small danger', onclick: closeChat }, 'Close chat') : null,
      ]),
    );
  }

  function toggleDetails() {
    var layout = $('layout');
    layout.dataset.view = layout.dataset.view === 'details' ? 'chat' : 'details';
    document.querySelector('.details-toggle').setAttribute('aria-pressed', String(layout.dataset.view === 'details'));
    if (layout.dataset.view === 'details') $('details').focus();
  }

  /** @param {any} item */
  function messageNode(item) {
    var who = item.author === 'CUSTOMER' ? customerName(open.chat && open.chat.customer)
      : item.author === 'AGENT' ? (item.authorId && state.me && item.authorId === state.me.id ? 'You' : item.authorName || 'Agent')
        : '';
    var agentNote = item.kind === 'MESSAGE' && item.visibility === 'AGENTS';
    var kind = agentNote ? 'note agent-note' : item.kind === 'MESSAGE' ? item.author.toLowerCase() : item.kind === 'TRANSFER_NOTE' ? 'note' : 'system';
    return h('div', { className: 'msg ' + kind, 'data-id': item.id }, [
      agentNote ? h('span', { className: 'note-label' }, 'Note, agents only') : null,
      kind === 'note' ? h('span', { className: 'author' }, 'Note from ' + (item.authorName || 'an agent') + ':') : null,
      agentNote ? h('span', { className: 'author' }, who) : null,
      who && kind !== 'note' && !agentNote ? h('span', { className: 'author' }, who) : null,
      h('time', { datetime: item.createdAt }, clock(item.createdAt)),
      item.text ? h('p', {}, item.text) : null,
    ].concat(attachmentNodes(item), [deliveryNode(item)]));
  }

  /** @param {any} data */
  function onChatEvent(data) {
    var event = data.chatEvents;
    if (!open.chat) return;
    if (event.__typename === 'MessageAdded') {
      open.lastCursor = event.cursor;
      var message = event.message;
      if (open.items.some(function (m) {
        return m.id === message.id;
      })) return;
      open.items.push(message);
      var log = $('log');
      var atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
      log.append(messageNode(message));
      if (atEnd || message.author === 'AGENT') log.scrollTop = log.scrollHeight;
      if (message.author === 'CUSTOMER') {
        open.typing.customer = false;
        open.typing.draft = null;
        showPeek();
        if (state.chats.has(open.chat.id) && !document.hidden) markRead(open.chat.id);
      }
      if (message.kind === 'TAGS_CHANGED') soon('open-chat-tags', reloadChatTags);
      if (message.author === 'SYSTEM' && open.chat.channel === 'MESSENGER') soon('deliveries', refreshDeliveries);
      if (message.kind === 'TRANSFER_NOTE' || message.kind === 'CHAT_TRANSFERRED' || message.kind === 'AGENT_ASSIGNED') {
        soon('open-chat', refreshOpenChat);
      }
    } else if (event.__typename === 'TypingChanged') {
      // An agent's typing comes back here too, the app's own included: that one is not shown.
      if (event.author === 'CUSTOMER') {
        open.typing.customer = event.isTyping;
        open.typing.draft = event.isTyping ? event.draft : null;
      } else if (event.author === 'AGENT' && event.authorId !== state.me.id) {
        if (event.isTyping) open.typing.agents.set(event.authorId, agentName(event.authorId));
        else open.typing.agents.delete(event.authorId);
      }
      showPeek();
    } else if (event.__typename === 'ChatClosed') {
      open.lastCursor = event.cursor;
      open.chat.status = 'CLOSED';
      state.chats.delete(open.chat.id);
      updateCounts();
      renderList();
      var composer = document.querySelector('#chat .composer');
      if (composer) composer.replaceWith(h('p', { className: 'closed' }, 'This chat is closed.'));
      renderChatHead();
      announce('The chat with ' + customerName(open.chat.customer) + ' is closed.');
    }
  }

  function refreshOpenChat() {
    if (!open.chat) return null;
    var id = open.chat.id;
    return api('query($id: ID!) { chat(id: $id) { id status assignee { id name } } }', { id: id }).then(function (data) {
      if (!open.chat || open.chat.id !== id) return;
      open.chat.status = data.chat.status;
      open.chat.assignee = data.chat.assignee;
      renderChatHead();
    });
  }

  /** Who else is typing in the open chat: the customer, with what they have typed so far, and teammates. */
  function showPeek() {
    var peek = $('peek');
    if (!peek) return;
    var typing = open.typing;
    peek.hidden = !typing.customer && !typing.agents.size;
    peek.replaceChildren();
    if (typing.customer) {
      peek.append(h('span', { className: 'typing' }, customerName(open.chat.customer) + ' is typing'));
      if (typing.draft) peek.append(h('span', { className: 'draft', title: 'Sneak peek' }, ': ' + typing.draft));
    }
    typing.agents.forEach(function (name) {
      peek.append(h('span', { className: 'typing' }, (typing.customer ? '; ' : '') + name + ' is typing'));
    });
  }

  /** A teammate's name: the chat's agent, or as the transcript gives it. @param {string} agentId */
  function agentName(agentId) {
    var assignee = open.chat && open.chat.assignee;
    if (assignee && assignee.id === agentId) return assignee.name;
    for (var i = open.items.length - 1; i >= 0; i--) {
      if (open.items[i].authorId === agentId && open.items[i].authorName) return open.items[i].authorName;
    }
    return 'A teammate';
  }

  function loadOlder() {
    if (!open.hasMore || open.loadingOlder || !open.chat) return;
    open.loadingOlder = true;
    var id = open.chat.id;
    api('query($id: ID!, $before: String) { chat(id: $id) { latestEvents(before: $before, last: 30) {' +
      ' items { ' + MESSAGE + ' } startCursor hasMore } } }', { id: id, before: open.startCursor }).then(function (data) {
      if (!open.chat || open.chat.id !== id) return;
      var page = data.chat.latestEvents;
      var log = $('log');
      var fromBottom = log.scrollHeight - log.scrollTop;
      var known = new Set(open.items.map(function (m) {
        return m.id;
      }));
      var older = page.items.filter(function (/** @type {any} */ m) {
        return !known.has(m.id);
      });
      open.items = older.concat(open.items);
      log.prepend.apply(log, older.map(messageNode));
      log.scrollTop = log.scrollHeight - fromBottom;
      open.startCursor = page.startCursor;
      open.hasMore = page.hasMore;
      $('older').hidden = !page.hasMore;
    }).catch(failed).finally(function () {
      open.loadingOlder = false;
    });
  }

  var typingSentAt = 0;
  var typingStop = 0;
  /** Tells the customer the agent is writing: at most every few seconds, and when they stop. */
  function typing() {
    if (!open.chat || noting()) return;
    var id = open.chat.id;
    var now = Date.now();
    if (now - typingSentAt > 3000) {
      typingSentAt = now;
      api('mutation($id: ID!) { setTyping(input: {chatId: $id, isTyping: true}) }', { id: id }).catch(function () {});
    }
    clearTimeout(typingStop);
    typingStop = window.setTimeout(function () {
      stopTyping(id);
    }, 4000);
  }

  /** @param {string} id */
  function stopTyping(id) {
    clearTimeout(typingStop);
    if (!typingSentAt) return;
    typingSentAt = 0;
    api('mutation($id: ID!) { setTyping(input: {chatId: $id, isTyping: false}) }', { id: id }).catch(function () {});
  }

  function sendReply() {
    var reply = $('reply');
    var text = reply.value.trim();
    if (!text || !open.chat) return;
    var id = open.chat.id;
    var clientId = (crypto.randomUUID && crypto.randomUUID()) || String(Date.now()) + Math.random();
    // The response picked for this text, so the server counts its use.
    var cannedId = picked;
    /** @type {Record<string, any>} */
    var input = { chatId: id, text: text, clientId: clientId };
    if (cannedId) input.cannedResponseId = cannedId;
    if (noting()) input.visibility = 'AGENTS';
    reply.value = '';
    picked = null;
    closeSuggestions();
    stopTyping(id);
    api('mutation($input: SendMessageInput!) { sendMessage(input: $input) { ' + MESSAGE + ' } }', {
      input: input,
    }).then(function (data) {
      onChatEvent({ chatEvents: { __typename: 'MessageAdded', cursor: open.lastCursor, message: data.sendMessage } });
    }).catch(function (err) {
      if (!reply.value) {
        reply.value = text;
        picked = cannedId;
      }
      failed(err);
    });
  }

  // ---- files ---------------------------------------------------------------------------------

  /** A message's files: images inline, anything else a download. @param {any} item */
  function attachmentNodes(item) {
    return (item.attachments || []).map(function (/** @type {any} */ file) {
      if (!file.url) return h('p', { className: 'file' }, file.name);
      if (file.isImage) {
        return h('a', { className: 'image', href: file.url, target: '_blank', rel: 'noopener' },
          h('img', { src: file.url, alt: file.name, loading: 'lazy' }));
      }
      var size = file.size < 1048576 ? Math.ceil(file.size / 1024) + ' KB' : (file.size / 1048576).toFixed(1) + ' MB';
      return h('a', { className: 'file', href: file.url, download: file.name }, file.name + ' (' + size + ')');
    });
  }

  /** The reply box's attach button and its hidden file picker. */
  function attachControl() {
    var picker = h('input', { type: 'file', id: 'attach-file', multiple: true, hidden: true });
    picker.addEventListener('change', function () {
      var files = Array.prototype.slice.call(picker.files || []);
      picker.value = '';
      if (files.length) sendFiles(files);
    });
    return h('span', { className: 'attach' }, [
      picker,
      h('button', { type: 'button', className: 'plain', title: 'Attach files', onclick: function () {
        picker.click();
      } }, 'Attach'),
    ]);
  }

  /**
   * Uploads files into the open chat (POST /files), then sends them in one message with what
   * the reply box holds. @param {File[]} files
   */
  function sendFiles(files) {
    if (!open.chat) return;
    var id = open.chat.id;
    var reply = $('reply');
    var text = reply ? reply.value.trim() : '';
    notice('Sending ' + files.length + (files.length === 1 ? ' file…' : ' files…'));
    Promise.all(files.map(function (file) {
      return accessToken().then(function (token) {
        return fetch('/files?chatId=' + encodeURIComponent(id) + '&name=' + encodeURIComponent(file.name), {
          method: 'POST',
          headers: { Authorization: 'Bearer ' + token, 'Content-Type': file.type || 'application/octet-stream' },
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
        return body.id;
      });
    })).then(function (fileIds) {
      var clientId = (crypto.randomUUID && crypto.randomUUID()) || String(Date.now()) + Math.random();
      return api('mutation($input: SendMessageInput!) { sendMessage(input: $input) { ' + MESSAGE + ' } }', {
        input: { chatId: id, text: text, clientId: clientId, fileIds: fileIds },
      });
    }).then(function (data) {
      if (reply && reply.value.trim() === text) reply.value = '';
      dismissNotice();
      if (open.chat && open.chat.id === id) {
        onChatEvent({ chatEvents: { __typename: 'MessageAdded', cursor: open.lastCursor, message: data.sendMessage } });
      }
    }).catch(failed);
  }

  // ---- canned responses in the reply box ------------------------------------------------

  var CANNED = 'id shortcut title text scope usageCount group { id name } owner { id name }';
  /** null until asked; false when the server has no canned responses (an older version). */
  var cannedSupported = /** @type {boolean | null} */ (null);
  /** Whether the server is one from before canned responses (it does not know the field). @param {any} err */
  function lacksCanned(err) {
    return (!err.code || err.code === 'GRAPHQL_VALIDATION_FAILED') && /Unknown \w+ "\w*annedResponse/.test(err.message || '');
  }

  /** The id of the response last put into the reply box, until it is emptied or sent. */
  var picked = /** @type {string | null} */ (null);
  var suggestions = {
    /** @type {any[]} */ items: [],
    active: -1,
    /** Where the #word starts in the reply box, and where it ends (the caret). */
    from: 0,
    to: 0,
    asked: 0,
    timer: 0,
  };

  /** Looks up canned responses for the #word just before the caret, ~120 ms after typing stops. */
  function suggest() {
    var reply = $('reply');
    if (!reply.value) picked = null;
    clearTimeout(suggestions.timer);
    var caret = reply.selectionStart;
    var word = cannedSupported === false || caret !== reply.selectionEnd ? null
      : /(^|\s)#([a-z0-9_-]{0,32})$/i.exec(reply.value.slice(0, caret));
    if (!word) return closeSuggestions();
    var from = caret - word[2].length - 1;
    var asked = ++suggestions.asked;
    suggestions.timer = window.setTimeout(function () {
      api('query($s: String) { cannedResponses(search: $s, first: 8) { ' + CANNED + ' } }', {
        s: word[2] ? '#' + word[2] : null,
      }).then(function (data) {
        cannedSupported = true;
        if (asked !== suggestions.asked || !$('reply')) return;
        suggestions.from = from;
        suggestions.to = caret;
        showSuggestions(data.cannedResponses);
      }).catch(function (err) {
        // An older server: # is just a character, as before.
        if (lacksCanned(err)) cannedSupported = false;
        else failed(err);
      });
    }, 120);
  }

  /** @param {any[]} items */
  function showSuggestions(items) {
    var list = $('suggestions');
    suggestions.items = items;
    if (!items.length) return closeSuggestions();
    list.replaceChildren.apply(list, items.map(function (item, i) {
      return h('li', {
        id: 'suggestion-' + i, role: 'option', 'aria-selected': 'false',
        onclick: function () {
          pick(i);
        },
      }, [h('b', {}, '#' + item.shortcut), ' ', h('span', {}, item.title), h('span', { className: 'last' }, item.text)]);
    }));
    list.hidden = false;
    $('reply').setAttribute('aria-expanded', 'true');
    activate(0);
  }

  /** @param {number} index */
  function activate(index) {
    var count = suggestions.items.length;
    suggestions.active = (index + count) % count;
    var options = $('suggestions').children;
    for (var i = 0; i < options.length; i++) options[i].setAttribute('aria-selected', String(i === suggestions.active));
    var option = options[suggestions.active];
    $('reply').setAttribute('aria-activedescendant', option.id);
    option.scrollIntoView({ block: 'nearest' });
  }

  function closeSuggestions() {
    suggestions.asked++;
    clearTimeout(suggestions.timer);
    var list = $('suggestions');
    var reply = $('reply');
    if (!list || list.hidden) return;
    list.hidden = true;
    list.replaceChildren();
    suggestions.items = [];
    reply.setAttribute('aria-expanded', 'false');
    reply.removeAttribute('aria-activedescendant');
  }

  /** The keys of the open list: Up, Down, Enter or Tab to pick, Escape to close. @param {KeyboardEvent} event */
  function suggestionKey(event) {
    if ($('suggestions').hidden || event.isComposing) return false;
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      activate(suggestions.active + (event.key === 'ArrowDown' ? 1 : -1));
    } else if ((event.key === 'Enter' || event.key === 'Tab') && !event.shiftKey) {
      pick(suggestions.active);
    } else if (event.key === 'Escape') {
      closeSuggestions();
    } else {
      return false;
    }
    event.preventDefault();
    event.stopPropagation();
    return true;
  }

  /** Puts the response, rendered for this chat, in place of the #word. @param {number} index */
  function pick(index) {
    var item = suggestions.items[index];
    var from = suggestions.from;
    var to = suggestions.to;
    closeSuggestions();
    if (!item || !open.chat) return;
    var chatId = open.chat.id;
    api('query($id: ID!, $chat: ID!) { renderCannedResponse(id: $id, chatId: $chat) }', { id: item.id, chat: chatId })
      .then(function (data) {
        var reply = $('reply');
        if (!reply || !open.chat || open.chat.id !== chatId) return;
        var text = data.renderCannedResponse;
        reply.value = reply.value.slice(0, from) + text + reply.value.slice(to);
        reply.selectionStart = reply.selectionEnd = from + text.length;
        reply.focus();
        picked = item.id;
      }).catch(failed);
  }

  function closeChat() {
    if (!open.chat) return;
    var id = open.chat.id;
    api('mutation($id: ID!) { closeChat(chatId: $id) { id status } }', { id: id }).then(function () {
      onChatEvent({ chatEvents: { __typename: 'ChatClosed', cursor: open.lastCursor } });
    }).catch(failed);
  }

  function renderDetails() {
    var chat = open.chat;
    var aside = $('details');
    if (!chat || !aside) return;
    var c = chat.customer;
    /** @param {string} label @param {any} value */
    function field(label, value) {
      return value || value === 0 ? [h('dt', {}, label), h('dd', {}, value)] : [];
    }
    /** @param {any} page */
    function pageLink(page) {
      if (!page) return null;
      var safe = /^https?:\/\//i.test(page.url);
      return safe ? h('a', { href: page.url, target: '_blank', rel: 'noopener noreferrer' }, page.title || page.url)
        : h('span', {}, page.title || page.url);
    }
    aside.setAttribute('tabindex', '-1');
    aside.replaceChildren(
      h('h2', {}, 'Customer details'),
      h('dl', {}, [].concat(
        field('Name', c.name || 'Not given'),
        field('Email', c.email ? h('a', { href: 'mailto:' + c.email }, c.email) : 'Not given'),
        field('Location', c.location),
        field('Current page', pageLink(c.currentPage)),
        field('Visits', c.visits),
        field('Came from', c.referrer),
        field('Group', chat.group && chat.group.name),
        field('Chat started', new Date(chat.createdAt).toLocaleString()),
        field('Browser', c.userAgent),
      )),
      h('h3', {}, 'Pages viewed'),
      c.pageHistory.length ? h('ol', { className: 'pages' }, c.pageHistory.filter(function (/** @type {any} */ page, /** @type {number} */ i) {
        // A reload or a new session on the same page is one stay there, for the reader.
        return i === 0 || c.pageHistory[i - 1].url !== page.url;
      }).map(function (/** @type {any} */ page) {
        return h('li', {}, [pageLink(page), ' ', h('time', { datetime: page.viewedAt }, clock(page.viewedAt))]);
      })) : empty('None yet.'),
    );
    aside.append(customerProfile(c.id));
    aside.append(integrationPanel(chat.id));
  }

  // ---- dialogs: transfer and greeting ----------------------------------------------------

  /** @param {string} id @param {string} title @param {Node[]} fields @param {string} action @param {() => void} onSubmit */
  function dialog(id, title, fields, action, onSubmit) {
    var form = h('form', { className: 'dialog-form' }, [
      h('h2', { id: id + '-title' }, title),
      h('div', { id: id + '-fields', className: 'fields' }, fields),
      h('p', { id: id + '-error', className: 'error', role: 'alert' }),
      h('div', { className: 'buttons' }, [
        h('button', { type: 'button', onclick: function () {
          $(id).close();
        } }, 'Cancel'),
        h('button', { type: 'submit', className: 'primary' }, action),
      ]),
    ]);
    form.addEventListener('submit', function (/** @type {Event} */ event) {
      event.preventDefault();
      onSubmit();
    });
    return h('dialog', { id: id, 'aria-labelledby': id + '-title' }, [form]);
  }

  /** @type {HTMLElement | null} */
  var returnFocus = null;
  /** @param {string} id */
  function showDialog(id) {
    returnFocus = /** @type {HTMLElement} */ (document.activeElement);
    var box = $(id);
    $(id + '-error').textContent = '';
    box.showModal();
    box.addEventListener('close', function () {
      if (returnFocus && document.contains(returnFocus)) returnFocus.focus();
    }, { once: true });
  }

  function transferDialog() {
    return dialog('transfer', 'Transfer the chat', [], 'Transfer', submitTransfer);
  }

  function openTransfer() {
    if (!open.chat) return;
    var id = open.chat.id;
    var privileged = state.me.role !== 'AGENT';
    Promise.all([
      api('query($id: ID!) { agentsForTransfer(chatId: $id) { activeChats chatLimit routable reachable agent { id name routingStatus } } }', { id: id }),
      api('{ groups { id name } }'),
    ]).then(function (results) {
      var candidates = results[0].agentsForTransfer;
      var groups = results[1].groups;
      var agents = h('fieldset', {}, [h('legend', {}, 'To an agent (least busy first)')].concat(
        candidates.length ? candidates.map(function (/** @type {any} */ c) {
          var why = !c.reachable ? 'unreachable' : !c.routable ? 'not accepting chats' : '';
          return h('label', { className: 'choice' + (why ? ' muted' : '') }, [
            h('input', { type: 'radio', name: 'target', value: 'agent:' + c.agent.id, disabled: !c.reachable && !privileged }),
            h('span', {}, c.agent.name),
            h('span', { className: 'load' }, c.activeChats + ' of ' + c.chatLimit + ' chats' + (why ? ' · ' + why : '')),
          ]);
        }) : [empty('No other agent.')]));
      var groupSet = h('fieldset', {}, [h('legend', {}, 'To a group')].concat(
        groups.length ? groups.map(function (/** @type {any} */ g) {
          return h('label', { className: 'choice' }, [
            h('input', { type: 'radio', name: 'target', value: 'group:' + g.id }),
            h('span', {}, g.name),
          ]);
        }) : [empty('No groups.')]));
      $('transfer-fields').replaceChildren(agents, groupSet,
        h('label', { for: 'transfer-note' }, 'Note for the next agent'),
        h('textarea', { id: 'transfer-note', rows: '3', maxlength: '1000' }),
        privileged ? h('label', { className: 'choice' }, [
          h('input', { type: 'checkbox', id: 'transfer-force' }),
          h('span', {}, 'Transfer even if they cannot be reached now'),
        ]) : null);
      showDialog('transfer');
      var first = $('transfer').querySelector('input[name=target]:not([disabled])');
      if (first) first.focus();
    }).catch(failed);
  }

  function submitTransfer() {
    var picked = /** @type {HTMLInputElement | null} */ ($('transfer').querySelector('input[name=target]:checked'));
    var error = $('transfer-error');
    if (!picked) {
      error.textContent = 'Choose an agent or a group.';
      return;
    }
    var parts = picked.value.split(':');
    var force = $('transfer-force');
    var chatId = open.chat.id;
    var name = customerName(open.chat.customer);
    var input = {
      chatId: chatId,
      toAgentId: parts[0] === 'agent' ? parts[1] : null,
      toGroupId: parts[0] === 'group' ? parts[1] : null,
      note: $('transfer-note').value.trim() || null,
      force: force ? force.checked : null,
    };
    api('mutation($input: TransferChatInput!) { transferChat(input: $input) { id } }', { input: input }).then(function () {
      $('transfer').close();
      state.chats.delete(chatId);
      updateCounts();
      announce('The chat with ' + name + ' was transferred.');
      location.hash = '#/chats';
    }).catch(function (err) {
      error.textContent = err.code === 'CONFLICT'
        ? 'They cannot be reached now: ' + err.message
        : 'The transfer did not work: ' + err.message;
    });
  }

  /** @type {any} */
  var greeting = null;
  function greetingDialog() {
    return dialog('greet', 'Greet a visitor', [
      h('p', { id: 'greet-who' }),
      h('label', { for: 'greet-text' }, 'Greeting'),
      h('textarea', { id: 'greet-text', rows: '3', maxlength: '1000' }),
    ], 'Send greeting', function () {
      var text = $('greet-text').value.trim();
      if (!text) {
        $('greet-error').textContent = 'Write a greeting.';
        return;
      }
      api('mutation($input: SendGreetingInput!) { sendGreeting(input: $input) { id } }', {
        input: { customerId: greeting.customer.id, text: text },
      }).then(function () {
        $('greet').close();
        announce('Greeting sent to ' + customerName(greeting.customer) + '.');
      }).catch(function (err) {
        $('greet-error').textContent = 'The greeting was not sent: ' + err.message;
      });
    });
  }

  /** @param {any} visitor */
  function openGreeting(visitor) {
    greeting = visitor;
    $('greet-who').textContent = 'To ' + customerName(visitor.customer) +
      (visitor.currentPage ? ', on ' + (visitor.currentPage.title || visitor.currentPage.url) : '') + '.';
    $('greet-text').value = 'Hi {{visitor.name}}, can I help you?';
    showDialog('greet');
    $('greet-text').focus();
  }

  // ---- canned responses: the list and the dialog ----------------------------------------

  function shareable() {
    return state.me.role === 'ADMIN' || state.me.role === 'OWNER';
  }

  function loadCanned() {
    // Admins and owners manage every shared response, a group's too when they are not in it.
    return api('query($m: Boolean!) { cannedResponses(first: 50, manageable: $m) { ' + CANNED + ' } }',
      { m: shareable() }).then(function (data) {
      cannedSupported = true;
      state.canned = data.cannedResponses;
    }, function (err) {
      if (!lacksCanned(err)) throw err;
      cannedSupported = false;
      state.canned = [];
    }).then(function () {
      if (state.tab === 'canned') renderList();
    }).catch(failed);
  }

  /** @param {any} item */
  function scopeName(item) {
    if (item.scope === 'ORGANIZATION') return 'Everyone';
    if (item.scope === 'GROUP') return 'Group ' + (item.group ? item.group.name : '');
    return 'Personal';
  }

  /** Admins and owners manage the shared ones; everyone their own. @param {any} item */
  function mayManage(item) {
    return item.scope === 'PERSONAL' ? !item.owner || item.owner.id === state.me.id : shareable();
  }

  function cannedList() {
    if (cannedSupported === false) {
      return empty('This server has no canned responses: they come with a newer version of Switchboard.');
    }
    if (!state.canned) return empty('Loading…');
    var add = h('button', { type: 'button', className: 'primary small add', 'data-key': 'canned:new', onclick: function () {
      editCanned(null);
    } }, 'New canned response');
    if (!state.canned.length) return h('div', {}, [add, empty('None yet. Type # and a shortcut in a reply to use one.')]);
    return h('div', {}, [add, h('ul', { className: 'rows', 'aria-label': 'Canned responses' }, state.canned.map(function (item) {
      var mine = mayManage(item);
      return h('li', { className: 'row canned' }, [
        h('span', { className: 'who' }, '#' + item.shortcut),
        h('span', { className: 'when' }, scopeName(item) + ' · used ' + item.usageCount + (item.usageCount === 1 ? ' time' : ' times')),
        h('span', { className: 'title' }, item.title),
        h('p', { className: 'text' }, item.text),
        mine ? h('span', { className: 'buttons' }, [
          h('button', { type: 'button', className: 'small', 'data-key': 'edit:' + item.id, 'aria-label': 'Edit #' + item.shortcut,
            onclick: function () {
              editCanned(item);
            } }, 'Edit'),
          h('button', { type: 'button', className: 'small danger', 'aria-label': 'Delete #' + item.shortcut, onclick: function () {
            if (!confirm('Delete #' + item.shortcut + '?')) return;
            api('mutation($id: ID!) { deleteCannedResponse(id: $id) }', { id: item.id }).then(function () {
              announce('#' + item.shortcut + ' deleted.');
              loadCanned();
            }).catch(failed);
          } }, 'Delete'),
        ]) : null,
      ]);
    }))]);
  }

  function cannedDialog() {
    return dialog('canned', 'Canned response', [
      h('label', { for: 'canned-shortcut' }, 'Shortcut (typed after #)'),
      h('input', { id: 'canned-shortcut', maxlength: '33', required: true, autocomplete: 'off' }),
      h('label', { for: 'canned-name' }, 'Title'),
      h('input', { id: 'canned-name', maxlength: '100', required: true }),
      h('label', { for: 'canned-text' }, 'Text'),
      h('textarea', { id: 'canned-text', rows: '5', maxlength: '4000', required: true, 'aria-describedby': 'canned-help' }),
      h('p', { id: 'canned-help', className: 'help' }, 'Placeholders: {{customer.first_name}}, {{customer.name}}, ' +
        '{{customer.email}}, {{agent.name}}, {{agent.first_name}}.'),
      h('div', { id: 'canned-scope' }),
    ], 'Save', saveCanned);
  }

  /** @type {any} */
  var editing = null;
  /** @param {any} item null for a new one */
  function editCanned(item) {
    editing = item;
    $('canned-shortcut').value = item ? item.shortcut : '';
    $('canned-name').value = item ? item.title : '';
    $('canned-text').value = item ? item.text : '';
    $('canned-title').textContent = item ? 'Edit #' + item.shortcut : 'New canned response';
    var scope = $('canned-scope');
    scope.replaceChildren();
    var ready = Promise.resolve();
    if (shareable()) {
      ready = api('{ groups { id name } }').then(function (data) {
        var now = item ? item.scope : 'PERSONAL';
        /** @param {string} value @param {string} label @param {string} [groupId] */
        function choice(value, label, groupId) {
          var checked = value === now && (!groupId || (item && item.group && item.group.id === groupId));
          return h('label', { className: 'choice' }, [
            h('input', { type: 'radio', name: 'canned-scope', value: value + (groupId ? ':' + groupId : ''), checked: checked }),
            h('span', {}, label),
          ]);
        }
        scope.replaceChildren(h('fieldset', {}, [h('legend', {}, 'Who may use it'),
          choice('PERSONAL', 'Only me'), choice('ORGANIZATION', 'Everyone')].concat(
          data.groups.map(function (/** @type {any} */ g) {
            return choice('GROUP', 'Group ' + g.name, g.id);
          }))));
      });
    }
    ready.then(function () {
      showDialog('canned');
      $('canned-shortcut').focus();
    }).catch(failed);
  }

  function saveCanned() {
    var error = $('canned-error');
    var chosen = /** @type {HTMLInputElement | null} */ ($('canned').querySelector('input[name=canned-scope]:checked'));
    var scope = (chosen ? chosen.value : 'PERSONAL').split(':');
    var input = {
      shortcut: $('canned-shortcut').value.trim(), title: $('canned-name').value.trim(), text: $('canned-text').value,
      scope: scope[0], groupId: scope[1] || null,
    };
    var done = editing
      ? api('mutation($id: ID!, $input: CannedResponseInput!) { updateCannedResponse(id: $id, input: $input) { id shortcut } }',
        { id: editing.id, input: input }).then(function (data) {
        return data.updateCannedResponse;
      })
      : api('mutation($input: CannedResponseInput!) { createCannedResponse(input: $input) { id shortcut } }', { input: input })
        .then(function (data) {
          return data.createCannedResponse;
        });
    done.then(function (saved) {
      $('canned').close();
      announce('#' + saved.shortcut + ' saved.');
      return loadCanned();
    }).catch(function (err) {
      error.textContent = err.code === 'CONFLICT' ? 'That shortcut is taken: ' + err.message
        : lacksCanned(err) ? 'This server has no canned responses.' : 'It was not saved: ' + err.message;
    });
  }

  // ---- notes, tags, teammates' chats ---------------------------------------------------

  var TAG = 'id name color';

  /** Whether the agent answers the customer in the open chat: theirs, or one they joined. */
  function mayAnswer() {
    return !!open.chat && (mine() || state.chats.has(open.chat.id));
  }

  /** A plain agent reading a teammate's chat (the organization allows it): nothing to write. */
  function readOnly() {
    return !!open.chat && state.me.role === 'AGENT' && open.chat.status === 'ACTIVE' && !mayAnswer();
  }

  function noteToggle() {
    return h('label', { className: 'note-toggle', title: 'A note is for agents only; the customer never sees it' }, [
      h('input', { type: 'checkbox', id: 'note', onchange: function () {
        setNoting(noting());
      } }), ' Note',
    ]);
  }

  function noting() {
    var box = $('note');
    return !!box && box.checked;
  }

  /** Switches the reply box between a reply and a note (a whisper, for a supervisor who has not joined). @param {boolean} on */
  function setNoting(on) {
    var box = $('note');
    if (!box) return;
    box.checked = on;
    var composer = document.querySelector('#chat .composer');
    if (composer) composer.classList.toggle('noting', on);
    $('reply').placeholder = on ? 'Write a note, agents only…' : 'Write a reply… (# for canned responses)';
    $('send').textContent = on ? 'Add note' : 'Send';
  }

  /** Who may tag the open chat: its agents, supervisors and admins; and after it, whoever had it. */
  function mayTag() {
    return !!open.chat && (state.me.role !== 'AGENT' || mayAnswer() || open.chat.status === 'CLOSED');
  }

  /** @param {any} tag @param {Node | null} [extra] */
  function tagChip(tag, extra) {
    var chip = h('span', { className: 'tag' }, [tag.name, extra || null]);
    // Through the CSSOM: the app's Content-Security-Policy refuses style attributes.
    if (tag.color) chip.style.setProperty('--tag', tag.color);
    return chip;
  }

  function renderChatTags() {
    var bar = $('chat-tags');
    if (!bar || !open.chat) return;
    var chat = open.chat;
    var on = chat.tags || [];
    var editable = mayTag();
    var items = on.map(function (/** @type {any} */ tag) {
      return h('li', {}, tagChip(tag, editable ? h('button', {
        type: 'button', className: 'quiet remove', 'aria-label': 'Remove the tag ' + tag.name, onclick: function () {
          changeChatTag('removeChatTag', tag.id);
        },
      }, '×') : null));
    });
    var add = null;
    if (editable && state.tags) {
      var choices = state.tags.filter(function (tag) {
        return !on.some(function (/** @type {any} */ t) {
          return t.id === tag.id;
        });
      });
      add = choices.length ? h('select', { 'aria-label': 'Add a tag', onchange: function (/** @type {Event} */ event) {
        var select = /** @type {HTMLSelectElement} */ (event.target);
        if (select.value) changeChatTag('addChatTag', select.value);
      } }, [h('option', { value: '' }, 'Add a tag…')].concat(choices.map(function (tag) {
        return h('option', { value: tag.id }, tag.name);
      }))) : null;
    } else if (editable && !state.tags) {
      loadTags().then(renderChatTags).catch(function () {});
    }
    bar.replaceChildren(on.length || add ? h('ul', { className: 'tags', 'aria-label': 'Tags' }, items) : '', add || '');
  }

  /** @param {string} mutation addChatTag or removeChatTag @param {string} tagId */
  function changeChatTag(mutation, tagId) {
    if (!open.chat) return;
    var id = open.chat.id;
    api('mutation($c: ID!, $t: ID!) { ' + mutation + '(chatId: $c, tagId: $t) { id tags { ' + TAG + ' } } }', { c: id, t: tagId })
      .then(function (data) {
        if (!open.chat || open.chat.id !== id) return;
        open.chat.tags = data[mutation].tags;
        renderChatTags();
      }).catch(failed);
  }

  function reloadChatTags() {
    if (!open.chat) return null;
    var id = open.chat.id;
    return api('query($id: ID!) { chat(id: $id) { tags { ' + TAG + ' } } }', { id: id }).then(function (data) {
      if (!open.chat || open.chat.id !== id) return;
      open.chat.tags = data.chat.tags;
      renderChatTags();
    });
  }

  function loadTags() {
    return api('{ tags { ' + TAG + ' } }').then(function (data) {
      state.tags = data.tags;
      if (state.tab === 'tags') renderList();
    });
  }

  function loadTeammatesSetting() {
    return api('{ organization { settings { agentsSeeGroupChats } } }').then(function (data) {
      state.teammates = data.organization.settings.agentsSeeGroupChats;
      renderNav();
    }, function () {
      state.teammates = false;
    });
  }

  /** Admins and owners: the organization's tags, and whether agents see their groups' chats. */
  function tagsScreen() {
    if (!state.tags) return empty('Loading…');
    var name = h('input', { id: 'tag-name', maxlength: '40', required: true, autocomplete: 'off' });
    var color = h('input', { id: 'tag-color', type: 'color', value: '#1a5fd0' });
    var form = h('form', { className: 'tag-form', 'aria-label': 'New tag' }, [
      h('label', { for: 'tag-name' }, 'Name'), name,
      h('label', { for: 'tag-color' }, 'Colour'), color,
      h('button', { type: 'submit', className: 'primary small' }, 'Add tag'),
    ]);
    form.addEventListener('submit', function (/** @type {Event} */ event) {
      event.preventDefault();
      api('mutation($input: TagInput!) { createTag(input: $input) { id name } }', { input: { name: name.value, color: color.value } })
        .then(function (data) {
          announce('Tag ' + data.createTag.name + ' added.');
          return loadTags();
        }).catch(failed);
    });
    var teammates = h('label', { className: 'choice' }, [
      h('input', { type: 'checkbox', checked: state.teammates, onchange: function (/** @type {Event} */ event) {
        var on = /** @type {HTMLInputElement} */ (event.target).checked;
        api('mutation($on: Boolean!) { updateOrganizationSettings(input: {agentsSeeGroupChats: $on}) { id } }', { on: on })
          .then(function () {
            state.teammates = on;
            announce(on ? 'Agents now see their groups\' chats.' : 'Agents see only their own chats.');
          }).catch(failed);
      } }),
      h('span', {}, 'Agents see their groups\' chats (read only)'),
    ]);
    return h('div', {}, [form, h('ul', { className: 'rows', 'aria-label': 'Tags' }, state.tags.map(function (tag) {
      return h('li', { className: 'row tag-row' }, [
        tagChip(tag),
        h('span', { className: 'buttons' }, [
          h('button', { type: 'button', className: 'small', 'aria-label': 'Rename ' + tag.name, onclick: function () {
            var next = prompt('New name for ' + tag.name, tag.name);
            if (!next) return;
            api('mutation($id: ID!, $input: TagInput!) { updateTag(id: $id, input: $input) { id } }',
              { id: tag.id, input: { name: next, color: tag.color } }).then(loadTags).catch(failed);
          } }, 'Rename'),
          h('button', { type: 'button', className: 'small danger', 'aria-label': 'Delete ' + tag.name, onclick: function () {
            if (!confirm('Delete the tag ' + tag.name + '? It comes off every chat.')) return;
            api('mutation($id: ID!) { deleteTag(id: $id) }', { id: tag.id }).then(loadTags).catch(failed);
          } }, 'Delete'),
        ]),
      ]);
    })), h('h3', {}, 'Teammates\' chats'), teammates]);
  }

  // ---- archive ---------------------------------------------------------------------------

  /** The archive's search, filters and the chats found so far. */
  var archive = {
    search: '', status: '', rating: '', from: '', to: '',
    /** @type {any[]} */ items: [], cursor: null, more: false, loaded: false, loading: false, error: '',
  };
  var ARCHIVE_CHAT = 'id status createdAt closedAt rating customer { name email } assignee { name }';

  /** @param {boolean} more */
  function loadArchive(more) {
    /** @type {Record<string, any>} */
    var filter = {};
    if (archive.search.trim()) filter.search = archive.search.trim();
    if (archive.status) filter.status = archive.status;
    if (archive.rating) filter.rating = archive.rating;
    if (archive.from) filter.from = new Date(archive.from + 'T00:00:00').toISOString();
    if (archive.to) filter.to = new Date(archive.to + 'T00:00:00').toISOString();
    archive.loading = true;
    archive.error = '';
    return api('query($f: ArchiveFilter, $after: String) { archive(filter: $f, first: 25, after: $after) {' +
      ' items { chat { ' + ARCHIVE_CHAT + ' } snippet { text highlighted } } endCursor hasNextPage } }',
    { f: filter, after: more ? archive.cursor : null }).then(function (data) {
      var page = data.archive;
      archive.items = more ? archive.items.concat(page.items) : page.items;
      archive.cursor = page.endCursor;
      archive.more = page.hasNextPage;
    }, function (err) {
      archive.items = more ? archive.items : [];
      archive.error = reason(err);
    }).then(function () {
      archive.loading = false;
      archive.loaded = true;
      if (state.tab === 'archive') renderList();
    });
  }

  /** A search snippet: matched words marked, all of it text. @param {any[]} parts */
  function snippet(parts) {
    return h('p', { className: 'snippet' }, parts.map(function (part) {
      return part.highlighted ? h('mark', {}, part.text) : part.text;
    }));
  }

  /** @param {string} label @param {string} key @param {string[][]} options */
  function archiveSelect(label, key, options) {
    var select = h('select', { 'data-key': 'archive:' + key, onchange: function () {
      /** @type {any} */ (archive)[key] = select.value;
      loadArchive(false);
    } }, options.map(function (o) {
      return h('option', { value: o[0], selected: /** @type {any} */ (archive)[key] === o[0] }, o[1]);
    }));
    return h('label', {}, [label + ' ', select]);
  }

  /** @param {string} label @param {string} key */
  function archiveDate(label, key) {
    var input = h('input', { type: 'date', 'data-key': 'archive:' + key, value: /** @type {any} */ (archive)[key],
      onchange: function () {
        /** @type {any} */ (archive)[key] = input.value;
        loadArchive(false);
      } });
    return h('label', {}, [label + ' ', input]);
  }

  function archiveList() {
    var box = h('input', {
      type: 'search', id: 'archive-search', 'data-key': 'archive:search', value: archive.search,
      placeholder: 'Words, "a phrase", a OR b, -not, pre*', 'aria-label': 'Search the archive',
    });
    var form = h('form', { className: 'archive-filters', role: 'search', onsubmit: function (/** @type {Event} */ event) {
      event.preventDefault();
      archive.search = box.value;
      loadArchive(false);
    } }, [
      box,
      h('button', { type: 'submit', className: 'primary small' }, 'Search'),
      archiveSelect('Status', 'status', [['', 'Any'], ['ACTIVE', 'Active'], ['QUEUED', 'Queued'], ['CLOSED', 'Closed']]),
      archiveSelect('Rating', 'rating', [['', 'Any'], ['GOOD', 'Good'], ['BAD', 'Bad']]),
      archiveDate('From', 'from'),
      archiveDate('Before', 'to'),
    ]);
    var results;
    if (archive.error) results = h('p', { className: 'error', role: 'alert' }, archive.error);
    else if (!archive.loaded) results = empty('Loading…');
    else if (!archive.items.length) results = empty('No chats found.');
    else {
      results = h('ul', { className: 'rows archive-results' }, archive.items.map(function (item) {
        var chat = item.chat;
        return h('li', { className: 'row' }, [
          h('a', { href: '#/chats/' + encodeURIComponent(chat.id), className: 'who', 'data-key': 'archive:' + chat.id },
            customerName(chat.customer)),
          h('span', { className: 'small' }, [new Date(chat.createdAt).toLocaleString(), ' · ',
            chat.status.toLowerCase(), chat.assignee ? ' · ' + chat.assignee.name : '',
            chat.rating ? ' · rated ' + chat.rating.toLowerCase() : '']),
          item.snippet ? snippet(item.snippet) : null,
        ]);
      }));
    }
    var more = archive.more ? h('button', { type: 'button', className: 'small', disabled: archive.loading,
      onclick: function () {
        loadArchive(true);
      } }, 'Show more') : null;
    return h('div', {}, [form, results, more]);
  }

  // ---- reports ---------------------------------------------------------------------------

  /** The Reports screen: its period, filters, choices and the report shown. */
  var reports = {
    from: '', to: '', groupId: '', agentId: '', tagId: '',
    /** @type {any} */ data: null, error: '', loading: false,
    /** @type {any} */ choices: null,
  };

  /** A date as the YYYY-MM-DD of the browser's calendar. @param {Date} d */
  function ymd(d) {
    return d.getFullYear() + '-' + String(d.getMonth() + 1).padStart(2, '0') + '-' + String(d.getDate()).padStart(2, '0');
  }

  /** @param {number} days */
  function daysAgo(days) {
    var d = new Date();
    d.setDate(d.getDate() - days);
    return ymd(d);
  }

  function timeZone() {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  }

  /** The report's input, as the API and the CSV export take it. */
  function reportInput() {
    /** @type {Record<string, string>} */
    var input = { from: reports.from, to: reports.to, timeZone: timeZone() };
    ['groupId', 'agentId', 'tagId'].forEach(function (key) {
      var value = /** @type {any} */ (reports)[key];
      if (value) input[key] = value;
    });
    return input;
  }

  var STATS = ' { averageSeconds medianSeconds p90Seconds }';
  var REPORT_ROW = 'chatsStarted chatsAnswered chatsMissed chatsTransferred queueWait' + STATS +
    ' firstResponseTime' + STATS + ' responseTime' + STATS + ' chatDuration' + STATS +
    ' ratedGood ratedBad ratedShare greetingsShown greetingsAnswered';

  function loadReport() {
    if (!reports.from) {
      reports.from = daysAgo(6);
      reports.to = daysAgo(0);
    }
    reports.loading = true;
    reports.error = '';
    if (!reports.choices) loadReportChoices();
    var asked = JSON.stringify(reportInput());
    return api('query($i: ReportInput!) { report(input: $i) { from to timeZone totals { ' + REPORT_ROW + ' }' +
      ' byDay { date chatsStarted chatsAnswered chatsMissed firstResponseTime { medianSeconds p90Seconds } }' +
      ' byAgent { agent { id name } ' + REPORT_ROW + ' } } }', { i: reportInput() }).then(function (data) {
      if (asked === JSON.stringify(reportInput())) reports.data = data.report;
    }, function (err) {
      reports.data = null;
      reports.error = reason(err);
    }).then(function () {
      reports.loading = false;
      if (state.tab === 'reports') renderList();
    });
  }

  /** The groups, agents and tags the signed-in agent may narrow a report to. */
  function loadReportChoices() {
    var role = state.me.role;
    reports.choices = { groups: [], agents: [], tags: [] };
    var query = '{ groups { id name } tags { id name } me { groups { id name } }' +
      (role === 'AGENT' ? '' : ' agents { id name }') + ' }';
    api(query).then(function (data) {
      // A supervisor of groups reports on those; one without groups supervises every chat.
      var mine = role === 'SUPERVISOR' && data.me.groups.length;
      reports.choices = { groups: mine ? data.me.groups : data.groups, agents: data.agents || [], tags: data.tags };
      if (state.tab === 'reports') renderList();
    }).catch(failed);
  }

  /** "1 h 5 m", "1 m 20 s", "4.2 s", "40 ms", or a dash when there is no number. @param {number | null} seconds */
  function duration(seconds) {
    if (seconds === null || seconds === undefined) return '–';
    if (seconds < 1) return Math.round(seconds * 1000) + ' ms';
    if (seconds < 10) return (Math.round(seconds * 10) / 10) + ' s';
    var s = Math.round(seconds);
    var hours = Math.floor(s / 3600);
    var minutes = Math.floor(s % 3600 / 60);
    if (hours) return hours + ' h ' + minutes + ' m';
    return minutes ? minutes + ' m ' + (s % 60) + ' s' : s + ' s';
  }

  /** @param {number | null} share */
  function percent(share) {
    return share === null || share === undefined ? '–' : Math.round(share * 100) + '%';
  }

  /** @param {number | null} n */
  function count(n) {
    return n === null || n === undefined ? '–' : n.toLocaleString();
  }

  /** @param {string} label @param {string} value @param {string} [note] */
  function tile(label, value, note) {
    return h('div', { className: 'tile' }, [h('dt', {}, label), h('dd', {}, [value, note ? h('small', {}, note) : null])]);
  }

  /** @param {string} label @param {any} stats */
  function statsTile(label, stats) {
    return tile(label, duration(stats.averageSeconds),
      'median ' + duration(stats.medianSeconds) + ' · p90 ' + duration(stats.p90Seconds));
  }

  /** @param {any} t */
  function reportTiles(t) {
    return h('dl', { className: 'tiles' }, [
      tile('Chats started', count(t.chatsStarted)),
      tile('Answered', count(t.chatsAnswered)),
      tile('Missed', count(t.chatsMissed)),
      tile('Transferred', count(t.chatsTransferred)),
      statsTile('First response time', t.firstResponseTime),
      statsTile('Response time', t.responseTime),
      statsTile('Queue wait', t.queueWait),
      statsTile('Chat duration', t.chatDuration),
      tile('Satisfaction', count(t.ratedGood) + ' good · ' + count(t.ratedBad) + ' bad', percent(t.ratedShare) + ' rated'),
      tile('Greetings', count(t.greetingsShown) + ' shown', count(t.greetingsAnswered) + ' answered'),
    ]);
  }

  var SVG = 'http://www.w3.org/2000/svg';
  /** @param {string} tag @param {Record<string, any>} attrs @param {any[]} [children] */
  function svg(tag, attrs, children) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (name) {
      node.setAttribute(name, String(attrs[name]));
    });
    (children || []).forEach(function (child) {
      if (child) node.append(child);
    });
    return node;
  }

  /**
   * Bars per day, one per series, drawn as SVG; a hidden table is its text alternative.
   * @param {string} title @param {string} summary @param {any[]} days
   * @param {Array<{label: string, cls: string, value: (day: any) => (number | null)}>} series
   * @param {(n: number | null) => string} format
   */
  function barChart(title, summary, days, series, format) {
    var W = 640, H = 180, top = 14, bottom = 20;
    var max = 0;
    days.forEach(function (day) {
      series.forEach(function (s) {
        max = Math.max(max, s.value(day) || 0);
      });
    });
    var slot = W / Math.max(days.length, 1);
    var bar = Math.max(1, (slot - 2) / series.length);
    var scale = max ? (H - top - bottom) / max : 0;
    var bars = [];
    days.forEach(function (day, i) {
      series.forEach(function (s, j) {
        var value = s.value(day) || 0;
        var height = value * scale;
        bars.push(svg('rect', { x: i * slot + 1 + j * bar, y: H - bottom - height, width: bar, height: height, class: s.cls }));
      });
    });
    var first = days[0] ? days[0].date : '';
    var last = days.length ? days[days.length - 1].date : '';
    var chart = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': title + ': ' + summary,
      class: 'chart' }, [
      svg('line', { x1: 0, x2: W, y1: H - bottom, y2: H - bottom, class: 'axis' }),
      svg('text', { x: 2, y: 10, class: 'label' }, ['max ' + format(max)]),
      svg('text', { x: 2, y: H - 4, class: 'label' }, [first]),
      svg('text', { x: W - 2, y: H - 4, class: 'label end' }, [last]),
    ].concat(bars));
    var legend = h('ul', { className: 'legend', 'aria-hidden': 'true' }, series.map(function (s) {
      return h('li', {}, [h('span', { className: 'swatch ' + s.cls }), s.label]);
    }));
    var table = h('table', { className: 'visually-hidden' }, [
      h('caption', {}, title),
      h('thead', {}, h('tr', {}, [h('th', { scope: 'col' }, 'Day')].concat(series.map(function (s) {
        return h('th', { scope: 'col' }, s.label);
      })))),
      h('tbody', {}, days.map(function (day) {
        return h('tr', {}, [h('th', { scope: 'row' }, day.date)].concat(series.map(function (s) {
          return h('td', {}, format(s.value(day)));
        })));
      })),
    ]);
    return h('figure', { className: 'report-chart' }, [h('figcaption', {}, title), chart, legend, table]);
  }

  /** @param {any[]} days */
  function reportCharts(days) {
    /** @param {string} key */
    function sum(key) {
      return days.reduce(function (total, day) {
        return total + day[key];
      }, 0);
    }
    var busiest = days.reduce(function (best, day) {
      return !best || day.chatsStarted > best.chatsStarted ? day : best;
    }, null);
    var answered = days.filter(function (day) {
      return day.firstResponseTime.medianSeconds !== null;
    });
    var slowest = answered.reduce(function (best, day) {
      return !best || day.firstResponseTime.p90Seconds > best.firstResponseTime.p90Seconds ? day : best;
    }, null);
    return h('div', { className: 'report-charts' }, [
      barChart('Chats per day', days.length + ' days: ' + sum('chatsStarted') + ' started, ' + sum('chatsAnswered') +
        ' answered, ' + sum('chatsMissed') + ' missed' +
        (busiest && busiest.chatsStarted ? '; the busiest day ' + busiest.date + ' with ' + busiest.chatsStarted : ''), days, [
        { label: 'Started', cls: 'started', value: function (d) { return d.chatsStarted; } },
        { label: 'Answered', cls: 'answered', value: function (d) { return d.chatsAnswered; } },
        { label: 'Missed', cls: 'missed', value: function (d) { return d.chatsMissed; } },
      ], count),
      barChart('First response time per day', answered.length
        ? 'answered chats on ' + answered.length + (answered.length === 1 ? ' day' : ' days') + '; the slowest p90 ' + duration(slowest.firstResponseTime.p90Seconds) +
          ' on ' + slowest.date
        : 'no answered chats', days, [
        { label: 'Median', cls: 'median', value: function (d) { return d.firstResponseTime.medianSeconds; } },
        { label: '90th percentile', cls: 'p90', value: function (d) { return d.firstResponseTime.p90Seconds; } },
      ], duration),
    ]);
  }

  /** @param {any[]} rows */
  function agentTable(rows) {
    if (!rows.length) return empty('No chats in this period.');
    var heads = ['Agent', 'Started', 'Answered', 'Missed', 'Transferred', 'First response (median)', 'Good', 'Bad'];
    return h('div', { className: 'table-scroll', tabindex: '0', role: 'region', 'aria-label': 'Chats per agent' }, h('table', { className: 'report-agents' }, [
      h('caption', {}, 'Per agent'),
      h('thead', {}, h('tr', {}, heads.map(function (label) {
        return h('th', { scope: 'col' }, label);
      }))),
      h('tbody', {}, rows.map(function (row) {
        return h('tr', {}, [h('th', { scope: 'row' }, row.agent ? row.agent.name : 'Not assigned'),
          h('td', {}, count(row.chatsStarted)), h('td', {}, count(row.chatsAnswered)), h('td', {}, count(row.chatsMissed)),
          h('td', {}, count(row.chatsTransferred)), h('td', {}, duration(row.firstResponseTime.medianSeconds)),
          h('td', {}, count(row.ratedGood)), h('td', {}, count(row.ratedBad))]);
      })),
    ]));
  }

  /** Fetches the CSV with the access token and saves it through a temporary link. @param {string} by */
  function downloadCsv(by) {
    var input = reportInput();
    input.by = by;
    return accessToken().then(function (token) {
      return fetch('/export/report.csv?' + new URLSearchParams(input), { headers: { Authorization: 'Bearer ' + token } });
    }).then(function (response) {
      if (!response.ok) {
        return response.text().then(function (text) {
          throw new Error(text.trim().replace(/^[A-Z_]+: /, ''));
        });
      }
      var name = /filename="([^"]+)"/.exec(response.headers.get('Content-Disposition') || '');
      return response.blob().then(function (blob) {
        var url = URL.createObjectURL(blob);
        var link = h('a', { href: url, download: name ? name[1] : 'report-' + by + '.csv', hidden: true });
        document.body.append(link);
        link.click();
        link.remove();
        window.setTimeout(function () {
          URL.revokeObjectURL(url);
        }, 1000);
        notice('Downloaded ' + link.download + '.');
      });
    }).catch(failed);
  }

  /** @param {string} label @param {string} key @param {any[]} items */
  function reportSelect(label, key, items) {
    var select = h('select', { id: 'reports-' + key, 'data-key': 'reports:' + key, onchange: function () {
      /** @type {any} */ (reports)[key] = select.value;
      loadReport();
    } }, [h('option', { value: '' }, 'All')].concat(items.map(function (item) {
      return h('option', { value: item.id, selected: /** @type {any} */ (reports)[key] === item.id }, item.name);
    })));
    return h('span', {}, [h('label', { for: select.id }, label), ' ', select]);
  }

  /** @param {string} label @param {string} key */
  function reportDate(label, key) {
    var input = h('input', { type: 'date', required: true, id: 'reports-' + key, 'data-key': 'reports:' + key, value: /** @type {any} */ (reports)[key],
      onchange: function () {
        if (!input.value) return;
        /** @type {any} */ (reports)[key] = input.value;
        loadReport();
      } });
    return h('span', {}, [h('label', { for: input.id }, label), ' ', input]);
  }

  /** @param {string} label @param {string} from @param {string} to */
  function quickPeriod(label, from, to) {
    return h('button', { type: 'button', className: 'small', 'data-key': 'reports:' + label,
      'aria-pressed': String(reports.from === from && reports.to === to), onclick: function () {
        reports.from = from;
        reports.to = to;
        loadReport();
      } }, label);
  }

  function reportsScreen() {
    if (!reports.from) loadReport();
    var choices = reports.choices || { groups: [], agents: [], tags: [] };
    var now = new Date();
    var filters = h('div', { className: 'report-filters', role: 'group', 'aria-label': 'Period and filters' }, [
      reportDate('From', 'from'),
      reportDate('To', 'to'),
      quickPeriod('Last 7 days', daysAgo(6), daysAgo(0)),
      quickPeriod('Last 30 days', daysAgo(29), daysAgo(0)),
      quickPeriod('This month', ymd(new Date(now.getFullYear(), now.getMonth(), 1)), daysAgo(0)),
      choices.groups.length ? reportSelect('Group', 'groupId', choices.groups) : null,
      state.me.role !== 'AGENT' && choices.agents.length ? reportSelect('Agent', 'agentId', choices.agents) : null,
      choices.tags.length ? reportSelect('Tag', 'tagId', choices.tags) : null,
    ]);
    var downloads = h('div', { className: 'report-downloads', role: 'group', 'aria-label': 'Download as CSV' },
      [['total', 'Total'], ['day', 'Per day'], ['agent', 'Per agent']].map(function (by) {
        return h('button', { type: 'button', className: 'small', onclick: function () {
          downloadCsv(by[0]);
        } }, 'CSV: ' + by[1]);
      }));
    var body;
    var r = reports.data;
    if (reports.error) body = h('p', { className: 'error', role: 'alert' }, reports.error);
    else if (!r) body = empty('Loading…');
    else {
      body = h('div', { className: 'report', 'aria-busy': String(reports.loading) }, [
        h('p', { className: 'small' }, (state.me.role === 'AGENT' ? 'Your chats' : state.me.role === 'SUPERVISOR'
          ? 'Your groups\' chats' : 'Chats') + ' started from ' + r.from + ' to ' + r.to + ' (' + r.timeZone + ').'),
        reportTiles(r.totals),
        reportCharts(r.byDay),
        agentTable(r.byAgent),
      ]);
    }
    return h('div', { className: 'reports' }, [filters, downloads, body]);
  }

  // The customer profile in the details pane, read once per customer and after each change.
  /** @type {{ id: string, data: any, error: string } | null} */
  var profile = null;

  /** @param {string} customerId */
  function customerProfile(customerId) {
    var box = h('section', { className: 'profile', id: 'profile', 'aria-labelledby': 'profile-title' });
    if (profile && profile.id === customerId) {
      fillProfile(box);
    } else {
      profile = { id: customerId, data: null, error: '' };
      box.append(empty('Loading the profile…'));
      loadProfile(customerId);
    }
    return box;
  }

  var PROFILE = 'id name firstName email phone note customFields { key value }' +
    ' ban { reason expiresAt } chats(first: 10) { items { chat { id status createdAt } } }';

  /** @param {string} customerId */
  function loadProfile(customerId) {
    return api('query($id: ID!) { customer(id: $id) { ' + PROFILE + ' } }', { id: customerId }).then(function (data) {
      return data.customer;
    }, function (err) {
      if (profile && profile.id === customerId) profile.error = reason(err);
      return null;
    }).then(function (data) {
      if (!profile || profile.id !== customerId) return;
      if (data) profile.data = data;
      var box = $('profile');
      if (box) fillProfile(box);
    });
  }

  /** @param {HTMLElement} box */
  function fillProfile(box) {
    var p = profile && profile.data;
    if (!p) {
      box.replaceChildren(h('h3', { id: 'profile-title' }, 'Profile'), empty((profile && profile.error) || 'Loading…'));
      return;
    }
    /** @param {string} label @param {string} name @param {string} value @param {string} [type] */
    function input(label, name, value, type) {
      return h('label', { className: 'field' }, [h('span', {}, label),
        h(type === 'textarea' ? 'textarea' : 'input', { name: name, value: value || '', rows: '2', type: type === 'textarea' ? null : (type || 'text') },
          type === 'textarea' ? value || '' : null)]);
    }
    var fields = p.customFields.map(function (/** @type {any} */ f) {
      return f.key + ': ' + f.value;
    }).join('\n');
    var form = h('form', { className: 'profile-form', onsubmit: function (/** @type {Event} */ event) {
      event.preventDefault();
      var data = new FormData(/** @type {HTMLFormElement} */ (form));
      var custom = String(data.get('custom') || '').split('\n').filter(function (line) {
        return line.trim();
      }).map(function (line) {
        var at = line.indexOf(':');
        return at < 0 ? { key: line.trim(), value: '' } : { key: line.slice(0, at).trim(), value: line.slice(at + 1).trim() };
      });
      var changes = {
        firstName: String(data.get('firstName')), email: String(data.get('email')), phone: String(data.get('phone')),
        note: String(data.get('note')), customFields: custom,
      };
      // A new name sets the first name unless that was changed too.
      if (String(data.get('name')) !== (p.name || '')) {
        /** @type {any} */ (changes).name = String(data.get('name'));
        if (changes.firstName === (p.firstName || '')) delete (/** @type {any} */ (changes)).firstName;
      }
      api('mutation($id: ID!, $input: UpdateCustomerInput!) { updateCustomer(id: $id, input: $input) { id } }',
        { id: p.id, input: changes }).then(function () {
        notice('Profile saved.');
        return reloadProfile();
      }).catch(failed);
    } }, [
      input('Name', 'name', p.name),
      input('First name', 'firstName', p.firstName),
      input('Email', 'email', p.email, 'email'),
      input('Phone', 'phone', p.phone, 'tel'),
      input('Note', 'note', p.note, 'textarea'),
      input('Custom fields (key: value, one a line)', 'custom', fields, 'textarea'),
      h('button', { type: 'submit', className: 'small' }, 'Save profile'),
    ]);
    var chats = p.chats.items.filter(function (/** @type {any} */ item) {
      return !open.chat || item.chat.id !== open.chat.id;
    });
    box.replaceChildren(
      h('h3', { id: 'profile-title' }, 'Profile'),
      form,
      h('h3', {}, 'Previous chats'),
      chats.length ? h('ul', { className: 'pages' }, chats.map(function (/** @type {any} */ item) {
        return h('li', {}, h('a', { href: '#/chats/' + encodeURIComponent(item.chat.id) },
          new Date(item.chat.createdAt).toLocaleString() + ' · ' + item.chat.status.toLowerCase()));
      })) : empty('None.'),
      // replaceChildren writes a null out as the text "null": a plain agent has no ban section.
      banSection(p) || '',
    );
  }

  function reloadProfile() {
    if (!profile) return Promise.resolve();
    return loadProfile(profile.id);
  }

  /** @param {any} p */
  function banSection(p) {
    var mayBan = state.me && state.me.role !== 'AGENT';
    if (p.ban) {
      return h('div', { className: 'ban' }, [
        h('p', { className: 'error' }, 'Banned' + (p.ban.expiresAt ? ' until ' + new Date(p.ban.expiresAt).toLocaleString() : '') +
          ': ' + p.ban.reason),
        mayBan ? h('button', { type: 'button', className: 'small', onclick: function () {
          api('mutation($id: ID!) { unbanCustomer(customerId: $id) }', { id: p.id }).then(reloadProfile).catch(failed);
        } }, 'Lift the ban') : null,
      ]);
    }
    if (!mayBan) return null;
    var reasonBox = h('input', { name: 'reason', required: true, maxlength: '500' });
    var length = h('select', { name: 'duration' }, [['3600', 'An hour'], ['86400', 'A day'], ['604800', 'A week'], ['', 'Until lifted']]
      .map(function (o) {
        return h('option', { value: o[0] }, o[1]);
      }));
    var address = h('input', { type: 'checkbox', name: 'address' });
    var form = h('form', { className: 'ban', onsubmit: function (/** @type {Event} */ event) {
      event.preventDefault();
      api('mutation($id: ID!, $input: BanCustomerInput!) { banCustomer(customerId: $id, input: $input) { id } }', {
        id: p.id, input: { reason: reasonBox.value, durationSeconds: length.value ? Number(length.value) : null,
          includeAddress: address.checked },
      }).then(reloadProfile).catch(failed);
    } }, [
      h('h3', {}, 'Ban'),
      h('label', { className: 'field' }, [h('span', {}, 'Reason'), reasonBox]),
      h('label', { className: 'field' }, [h('span', {}, 'For'), length]),
      h('label', {}, [address, ' Also ban their address']),
      h('button', { type: 'submit', className: 'small danger' }, 'Ban the customer'),
    ]);
    return form;
  }

  // ---- webhooks and send to integration ----------------------------------------------------

  /** The Webhooks screen (admins and owners): endpoints, the secret just shown, open logs. */
  var hooks = {
    /** @type {any[] | null} */ endpoints: null,
    /** @type {string[]} */ types: [],
    /** The secret of the endpoint just created or rotated: shown once. */
    secret: '', secretFor: '',
    /** @type {Record<string, any[]>} */ logs: {},
  };
  var ENDPOINT = 'id url description events includeNotes kind enabled disabledReason consecutiveFailures';
  var DELIVERY = 'id cursor eventType status attempts responseStatus durationMs lastError createdAt';

  function loadWebhooks() {
    return api('{ webhookEndpoints { ' + ENDPOINT + ' } webhookEventTypes }').then(function (data) {
      hooks.endpoints = data.webhookEndpoints;
      hooks.types = data.webhookEventTypes;
      if (state.tab === 'webhooks') renderList();
    }).catch(failed);
  }

  /** @param {string} endpointId */
  function loadDeliveries(endpointId) {
    return api('query($e: ID!) { webhookDeliveries(endpointId: $e, first: 20) { ' + DELIVERY + ' } }', { e: endpointId })
      .then(function (data) {
        hooks.logs[endpointId] = data.webhookDeliveries;
        if (state.tab === 'webhooks') renderList();
        // While something is on its way, look again.
        var waiting = data.webhookDeliveries.some(function (/** @type {any} */ d) {
          return d.status === 'PENDING' || d.status === 'SENDING';
        });
        if (waiting) {
          window.setTimeout(function () {
            if (hooks.logs[endpointId] && state.tab === 'webhooks') loadDeliveries(endpointId);
          }, 1000);
        }
      }).catch(failed);
  }

  /** A delivery's state as a person reads it. @param {any} d */
  function deliveryState(d) {
    var text = { PENDING: 'Waiting', SENDING: 'Sending', DELIVERED: 'Delivered', FAILED: 'Failed' }[/** @type {'PENDING'} */ (d.status)] || d.status;
    if (d.responseStatus) text += ' (HTTP ' + d.responseStatus + ')';
    if (d.status !== 'DELIVERED' && d.lastError) text += ': ' + d.lastError;
    return text;
  }

  function webhooksScreen() {
    if (!hooks.endpoints) return empty('Loading…');
    var url = h('input', { id: 'hook-url', type: 'url', required: true, autocomplete: 'off', placeholder: 'The receiver\'s http(s) address' });
    var description = h('input', { id: 'hook-description', maxlength: '200', autocomplete: 'off' });
    var boxes = hooks.types.map(function (type) {
      return h('label', { className: 'choice' }, [h('input', { type: 'checkbox', name: 'hook-event', value: type }), ' ' + type]);
    });
    var notes = h('input', { type: 'checkbox', id: 'hook-notes' });
    var integration = h('input', { type: 'checkbox', id: 'hook-integration' });
    var form = h('form', { className: 'hook-form', 'aria-label': 'New endpoint' }, [
      h('label', { for: 'hook-url' }, 'URL'), url,
      h('label', { for: 'hook-description' }, 'Description'), description,
      h('fieldset', {}, [h('legend', {}, 'Events')].concat(boxes)),
      h('label', { className: 'choice' }, [notes, ' Include agents\' notes']),
      h('label', { className: 'choice' }, [integration, ' Integration: agents send chats to it']),
      h('button', { type: 'submit', className: 'primary small' }, 'Add endpoint'),
    ]);
    form.addEventListener('submit', function (/** @type {Event} */ event) {
      event.preventDefault();
      var events = Array.prototype.slice.call(form.querySelectorAll('input[name="hook-event"]:checked'))
        .map(function (/** @type {HTMLInputElement} */ box) {
          return box.value;
        });
      api('mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { secret endpoint { id url } } }', {
        input: {
          url: url.value, description: description.value || null, events: events,
          includeNotes: notes.checked, kind: integration.checked ? 'INTEGRATION' : 'WEBHOOK',
        },
      }).then(function (data) {
        hooks.secret = data.createWebhookEndpoint.secret;
        hooks.secretFor = data.createWebhookEndpoint.endpoint.url;
        announce('Endpoint ' + hooks.secretFor + ' added.');
        return loadWebhooks();
      }).catch(failed);
    });
    var secret = hooks.secret ? h('div', { className: 'secret', role: 'status' }, [
      h('p', {}, 'The signing secret of ' + hooks.secretFor + ', shown this once: '),
      h('code', { 'aria-label': 'Signing secret' }, hooks.secret),
    ]) : null;
    return h('div', {}, [form, secret, h('ul', { className: 'rows', 'aria-label': 'Endpoints' }, hooks.endpoints.map(endpointRow))]);
  }

  /** @param {any} e */
  function endpointRow(e) {
    var name = e.description || e.url;
    var log = hooks.logs[e.id];
    var standing = e.enabled ? 'Enabled' : 'Disabled' + (e.disabledReason ? ': ' + e.disabledReason : '');
    return h('li', { className: 'row hook-row' }, [
      h('div', {}, [
        h('strong', {}, name), ' ', e.kind === 'INTEGRATION' ? h('span', { className: 'chip' }, 'Integration') : null,
        h('div', { className: 'meta' }, e.url + ' · ' + e.events.join(', ') + (e.includeNotes ? ' · with notes' : '')),
        h('div', { className: 'meta' }, standing),
      ]),
      h('span', { className: 'buttons' }, [
        h('button', { type: 'button', className: 'small', 'aria-label': (e.enabled ? 'Disable ' : 'Enable ') + name, onclick: function () {
          api('mutation($id: ID!, $on: Boolean!) { updateWebhookEndpoint(id: $id, input: {enabled: $on}) { id } }',
            { id: e.id, on: !e.enabled }).then(loadWebhooks).catch(failed);
        } }, e.enabled ? 'Disable' : 'Enable'),
        h('button', { type: 'button', className: 'small', 'aria-label': 'Send test to ' + name, onclick: function () {
          api('mutation($e: ID!) { sendTestWebhook(endpointId: $e) { id } }', { e: e.id }).then(function () {
            announce('Test event sent to ' + name + '.');
            return loadDeliveries(e.id);
          }).catch(failed);
        } }, 'Send test'),
        h('button', { type: 'button', className: 'small', 'aria-expanded': String(!!log), 'aria-label': 'Deliveries of ' + name, onclick: function () {
          if (log) {
            delete hooks.logs[e.id];
            renderList();
          } else {
            loadDeliveries(e.id);
          }
        } }, 'Deliveries'),
        h('button', { type: 'button', className: 'small danger', 'aria-label': 'Delete ' + name, onclick: function () {
          if (!confirm('Delete the endpoint ' + name + ' and its delivery log?')) return;
          api('mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }', { id: e.id }).then(loadWebhooks).catch(failed);
        } }, 'Delete'),
      ]),
      log ? h('ol', { className: 'deliveries', 'aria-label': 'Deliveries of ' + name }, log.length ? log.map(function (d) {
        return h('li', {}, [
          h('time', { datetime: d.createdAt }, clock(d.createdAt)), ' ', d.eventType, ': ', deliveryState(d),
          d.durationMs !== null ? ' · ' + d.durationMs + ' ms' : '', ' · ' + d.attempts + ' attempt' + (d.attempts === 1 ? '' : 's'), ' ',
          h('button', { type: 'button', className: 'small quiet', 'aria-label': 'Redeliver ' + d.eventType, onclick: function () {
            api('mutation($d: ID!) { redeliverWebhook(deliveryId: $d) { id } }', { d: d.id }).then(function () {
              return loadDeliveries(e.id);
            }).catch(failed);
          } }, 'Redeliver'),
        ]);
      }) : [h('li', {}, 'Nothing sent yet.')]) : null,
    ]);
  }

  /** "Send to integration" under an open chat's details: one button per integration, and how
   * each send went. @param {string} chatId */
  function integrationPanel(chatId) {
    var panel = h('section', { className: 'integrations', 'aria-label': 'Send to integration' });
    function draw(/** @type {any[]} */ integrations, /** @type {any[]} */ sends) {
      if (!integrations.length && !sends.length) {
        panel.replaceChildren();
        return;
      }
      /** @param {string} id */
      function nameOf(id) {
        var found = integrations.find(function (i) {
          return i.id === id;
        });
        return found ? found.name : 'an integration';
      }
      panel.replaceChildren.apply(panel, [
        h('h3', {}, 'Send to integration'),
        h('div', { className: 'buttons' }, integrations.map(function (integration) {
          return h('button', { type: 'button', className: 'small', onclick: function () {
            api('mutation($c: ID!, $e: ID!) { sendChatToIntegration(chatId: $c, endpointId: $e) { id } }',
              { c: chatId, e: integration.id }).then(function () {
              announce('Sending the chat to ' + integration.name + '.');
              load();
            }).catch(failed);
          } }, 'Send to ' + integration.name);
        })),
        sends.length ? h('ul', { className: 'sends', 'aria-label': 'Sent to integrations' }, sends.map(function (s) {
          return h('li', {}, [h('time', { datetime: s.createdAt }, clock(s.createdAt)), ' ', nameOf(s.endpointId), ': ',
            deliveryState(s)]);
        })) : null,
      ].filter(Boolean));
    }
    function load() {
      api('query($c: ID!) { integrations { id name } chatIntegrationSends(chatId: $c) { id endpointId status responseStatus lastError createdAt } }', { c: chatId })
        .then(function (data) {
          if (!open.chat || open.chat.id !== chatId) return;
          draw(data.integrations, data.chatIntegrationSends);
          var waiting = data.chatIntegrationSends.some(function (/** @type {any} */ s) {
            return s.status === 'PENDING' || s.status === 'SENDING';
          });
          if (waiting) window.setTimeout(load, 1000);
        }).catch(function () {});
    }
    load();
    return panel;
  }

  // ---- Facebook Messenger ------------------------------------------------------------------

  /** The organization's connected pages (admins), or null until loaded. @type {any[] | null} */
  var messengerPages = null;

  /** A Messenger badge for a chat from Messenger. @param {any} chat */
  function channelBadge(chat) {
    if (!chat || chat.channel !== 'MESSENGER') return null;
    return h('span', { className: 'badge messenger' }, 'Messenger');
  }

  var DELIVERY_WORDS = { PENDING: 'Sending to Messenger…', SENT: 'Sent', DELIVERED: 'Delivered', READ: 'Read' };

  /** How far an agent's message to Messenger got; a failure in words. @param {any} item */
  function deliveryNode(item) {
    var delivery = item.delivery;
    if (!delivery) return null;
    if (delivery.state === 'FAILED') {
      return h('p', { className: 'delivery failed', role: 'status' },
        'Not delivered to Messenger' + (delivery.error ? ': ' + delivery.error : ''));
    }
    return h('span', { className: 'delivery' }, /** @type {any} */ (DELIVERY_WORDS)[delivery.state] || '');
  }

  /** Reads the open chat's latest deliveries again (a send failed, receipts came). */
  function refreshDeliveries() {
    if (!open.chat) return null;
    var id = open.chat.id;
    return api('query($id: ID!) { chat(id: $id) { latestEvents(last: 30) { items { id delivery { state error } } } } }',
      { id: id }).then(function (data) {
      if (!open.chat || open.chat.id !== id) return;
      data.chat.latestEvents.items.forEach(function (/** @type {any} */ fresh) {
        var item = open.items.find(function (m) {
          return m.id === fresh.id;
        });
        if (!item || !fresh.delivery) return;
        item.delivery = fresh.delivery;
        var node = document.querySelector('#log [data-id="' + CSS.escape(item.id) + '"]');
        if (node) node.replaceWith(messageNode(item));
      });
    }).catch(function () {});
  }

  // With a Messenger chat open its replies' states follow along: sent, delivered, read, failed.
  window.setInterval(function () {
    if (open.chat && open.chat.channel === 'MESSENGER' && !document.hidden) refreshDeliveries();
  }, 3000);

  var PAGE = 'id pageId name accessTokenHint groupId webhookPath';

  function loadMessengerPages() {
    return api('{ messengerPages { ' + PAGE + ' } }').then(function (data) {
      messengerPages = data.messengerPages;
      if (state.tab === 'messenger') renderList();
    }).catch(failed);
  }

  function messengerScreen() {
    if (!messengerPages) return empty('Loading…');
    /** @param {string} id @param {string} label @param {string} hint */
    function field(id, label, hint) {
      return [h('label', { for: id }, label),
        h('input', { id: id, required: true, autocomplete: 'off', 'aria-describedby': id + '-hint' }),
        h('small', { id: id + '-hint' }, hint)];
    }
    var form = h('form', { className: 'messenger-form', 'aria-label': 'Connect a Facebook page' }, [].concat(
      field('fb-page-id', 'Page id', 'The page\'s numeric id (Page settings → About).'),
      field('fb-token', 'Page access token', 'With pages_messaging; checked with Facebook at once.'),
      field('fb-secret', 'App secret', 'Your Facebook app\'s secret: it signs the page\'s events.'),
      field('fb-verify', 'Verify token', 'Any word; give Facebook the same with the callback URL.'),
      [h('button', { type: 'submit', className: 'primary small' }, 'Connect page')],
    ));
    form.addEventListener('submit', function (/** @type {Event} */ event) {
      event.preventDefault();
      /** @param {string} id */
      function value(id) {
        return /** @type {HTMLInputElement} */ ($(id)).value;
      }
      api('mutation($input: ConnectMessengerPageInput!) { connectMessengerPage(input: $input) { id name pageId } }', {
        input: { pageId: value('fb-page-id'), accessToken: value('fb-token'), appSecret: value('fb-secret'),
          verifyToken: value('fb-verify') },
      }).then(function (data) {
        var page = data.connectMessengerPage;
        announce('Page ' + (page.name || page.pageId) + ' connected.');
        return loadMessengerPages();
      }).catch(failed);
    });
    var callback = location.origin + '/channels/messenger/webhook';
    return h('div', {}, [
      h('p', {}, ['Callback URL for Facebook: ', h('code', {}, callback),
        '. Subscribe the page to messages, message_deliveries and message_reads.']),
      form,
      messengerPages.length ? h('ul', { className: 'rows', 'aria-label': 'Connected pages' }, messengerPages.map(function (page) {
        return h('li', { className: 'row' }, [
          h('span', { className: 'who' }, page.name || page.pageId),
          h('span', { className: 'last' }, 'Page ' + page.pageId + ' · token ' + page.accessTokenHint),
          h('button', { type: 'button', className: 'small danger', 'aria-label': 'Disconnect ' + (page.name || page.pageId),
            onclick: function () {
              if (!confirm('Disconnect ' + (page.name || page.pageId) + '? Its messages stop coming in.')) return;
              api('mutation($id: ID!) { disconnectMessengerPage(id: $id) { id } }', { id: page.id })
                .then(loadMessengerPages).catch(failed);
            } }, 'Disconnect'),
        ]);
      })) : empty('No page connected yet.'),
    ]);
  }

  // ---- offline messages by email -------------------------------------------------------

  /** A message's replies as the app shows them. */
  var OFFLINE_REPLIES = 'replies { id text agentName createdAt delivery deliveryError }';
  /** @type {Record<string, string>} */
  var EMAIL_STATE = { QUEUED: 'Email queued', SENT: 'Email sent', FAILED: 'Email failed' };
  /** Replies being written, by offline message: the list is drawn again on every event. @type {Record<string, string>} */
  var offlineDrafts = {};
  var deliveryCheck = 0;

  /** The replies under an offline message, and a box to answer the customer by email. @param {any} message */
  function offlineReplies(message) {
    var replies = (message.replies || []).map(function (/** @type {any} */ reply) {
      return h('li', { className: 'offline-reply' }, [
        h('p', { className: 'text' }, reply.text),
        h('span', { className: 'meta' }, reply.agentName + ', ' + new Date(reply.createdAt).toLocaleString()),
        h('span', { className: 'delivery ' + String(reply.delivery).toLowerCase() },
          (EMAIL_STATE[reply.delivery] || reply.delivery) + (reply.deliveryError ? ': ' + reply.deliveryError : '')),
      ]);
    });
    var id = 'offline-reply-' + message.id;
    var sending = false;
    var form = h('form', {
      className: 'offline-answer',
      onsubmit: function (/** @type {Event} */ event) {
        event.preventDefault();
        var box = $(id);
        var text = box ? box.value.trim() : '';
        if (!text || sending) return;
        sending = true;
        api('mutation($id: ID!, $text: String!) { replyToOfflineMessage(offlineMessageId: $id, text: $text) { id handled ' +
          OFFLINE_REPLIES + ' } }', { id: message.id, text: text }).then(function (data) {
          var answered = data.replyToOfflineMessage;
          message.handled = answered.handled;
          message.replies = answered.replies;
          delete offlineDrafts[message.id];
          notice('Reply to ' + message.name + ' queued for email.');
          renderNav();
          renderList();
          watchDeliveries();
        }).catch(function (err) {
          sending = false;
          if (err && err.code === 'EMAIL_NOT_CONFIGURED') notice('Replies by email are not set up on this server: ' + reason(err) + '.');
          else failed(err);
        });
      },
    }, [
      h('label', { for: id, className: 'visually-hidden' }, 'Reply by email to ' + message.name),
      h('textarea', {
        id: id, rows: '2', maxlength: '4000', 'data-key': 'offline-reply:' + message.id,
        placeholder: 'Reply by email…',
        text: offlineDrafts[message.id] || '',
        oninput: function (/** @type {Event} */ event) {
          offlineDrafts[message.id] = /** @type {HTMLTextAreaElement} */ (event.target).value;
        },
      }),
      h('button', { type: 'submit', className: 'small' }, 'Send by email'),
    ]);
    return h('div', { className: 'offline-replies' }, [
      replies.length ? h('ul', { 'aria-label': 'Replies to ' + message.name }, replies) : null,
      form,
    ]);
  }

  /** While a reply's email waits, looks again now and then, so its state shows when it goes out. */
  function watchDeliveries() {
    clearTimeout(deliveryCheck);
    var waiting = state.offline.some(function (m) {
      return (m.replies || []).some(function (/** @type {any} */ r) {
        return r.delivery === 'QUEUED';
      });
    });
    if (!waiting || state.tab !== 'offline') return;
    deliveryCheck = window.setTimeout(function () {
      var typing = document.activeElement && document.activeElement.closest && document.activeElement.closest('.offline-answer');
      (typing ? Promise.resolve() : loadOffline()).then(watchDeliveries, function () {});
    }, 2000);
  }

  // ---- PWA: the service worker and Web Push ---------------------------------------------

  function worker() {
    if (!('serviceWorker' in navigator)) return Promise.resolve(null);
    return navigator.serviceWorker.register('sw.js', { scope: './' });
  }
  var registration = worker().catch(function () {
    return null;
  });

  if ('serviceWorker' in navigator) {
    // A tapped notification in an open app: show that chat.
    navigator.serviceWorker.addEventListener('message', function (event) {
      var data = event.data || {};
      if (data.type === 'open-chat' && data.chatId) location.hash = '#/chats/' + encodeURIComponent(data.chatId);
    });
  }

  /** @returns {Promise<PushSubscription | null>} */
  function pushSubscription() {
    return registration.then(function (reg) {
      return reg && reg.pushManager ? reg.pushManager.getSubscription() : null;
    });
  }

  /** @param {string} base64url */
  function keyBytes(base64url) {
    var text = atob(base64url.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((base64url.length + 3) % 4));
    return Uint8Array.from(text, function (ch) {
      return ch.charCodeAt(0);
    });
  }

  /** Registers this browser for pushes, so chats reach the agent with the app closed. */
  function enablePush() {
    var button = $('notify');
    button.disabled = true;
    var permission = window.Notification ? Notification.requestPermission() : Promise.resolve('denied');
    Promise.resolve(permission).then(function (answer) {
      if (answer !== 'granted') throw new Error('notifications are blocked for this site in the browser');
      return api('{ webPushPublicKey }');
    }).then(function (data) {
      return registration.then(function (reg) {
        if (!reg) throw new Error('this browser has no service worker');
        return reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(data.webPushPublicKey) });
      });
    }).then(function (subscription) {
      var keys = subscription.toJSON().keys || {};
      return api('mutation($input: RegisterPushDeviceInput!) { registerPushDevice(input: $input) { id } }', {
        input: {
          platform: 'WEB', token: subscription.endpoint, appId: location.origin,
          webPush: { p256dh: keys.p256dh, auth: keys.auth }, locale: navigator.language,
          deviceName: navigator.userAgent.slice(0, 100),
        },
      });
    }).then(function () {
      button.hidden = true;
      notice('You will be notified when the app is closed.');
    }).catch(function (err) {
      button.disabled = false;
      notice('Notifications when the app is closed are not available: ' + reason(err) + '.');
    });
  }

  // ---- start ----------------------------------------------------------------------------------

  window.addEventListener('storage', function (event) {
    // Signing out in one tab signs out every tab.
    if (event.key === STORAGE && !event.newValue && state.me) signedOut('');
  });

  if (session) {
    api('{ me { ' + ME + ' } }').then(function (data) {
      signedIn(data.me);
    }).catch(function (err) {
      if (err.code === 'UNAUTHENTICATED' || !session) signedOut('');
      else renderSignIn('The server cannot be reached: ' + err.message);
    });
  } else {
    renderSignIn();
  }
  // Keep the session alive and the status honest while the app is open.
  window.setInterval(function () {
    if (state.me) refreshMe().catch(function () {});
  }, 30000);
})();
