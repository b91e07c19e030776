/* Switchboard chat widget loader. A site embeds it with
 *   <script src="https://<server>/widget.js" data-widget-key="wk_…" async></script>
 * (optional data-group, data-locale). It opens one iframe on the server's origin, which holds
 * the chat button and window, so the host page's CSS and scripts cannot reach the chat and the
 * chat's cannot reach the page. This file only sizes that frame, tells it which page the
 * visitor is on, flashes the tab title for unread messages, and offers the host API:
 *   Switchboard.identify({name, email, userId, signature}), .open(), .close(),
 *   .on('chat_started' | 'message_received', fn)
 * Calls made before this file loaded are queued as `window.Switchboard = {q: [[name, ...args]]}`.
 */
// @ts-check
(function () {
  'use strict';
  var w = /** @type {any} */ (window);
  var doc = document;
  if (w.Switchboard && w.Switchboard.loaded) return;

  var script = /** @type {HTMLScriptElement | null} */ (
    doc.currentScript || doc.querySelector('script[data-widget-key]'));
  if (!script) return;
  var key = script.getAttribute('data-widget-key') || '';
  var src = new URL(script.src, location.href);
  var origin = src.origin;
  var params = new URLSearchParams({ key: key, o: location.origin });
  var group = script.getAttribute('data-group');
  var locale = script.getAttribute('data-locale');
  if (group) params.set('group', group);
  if (locale) params.set('locale', locale);

  // Browsers that deny storage to third-party frames keep the frame's state here, on the
  // site's own origin, instead.
  var storeKey = 'switchboard:' + key;
  function readStored() {
    try {
      return localStorage.getItem(storeKey);
    } catch (err) {
      return null;
    }
  }
  w.addEventListener('storage', function (event) {
    if (event.key === storeKey) post({ type: 'stored', value: event.newValue, changed: true });
  });

  var queued = w.Switchboard && Array.isArray(w.Switchboard.q) ? w.Switchboard.q : [];
  /** @type {Record<string, Function[]>} */
  var handlers = {};
  /** @type {any[]} */
  var outbox = [];
  var ready = false;
  var state = { hidden: false, open: false, bubble: false, position: 'RIGHT', unread: 0, flashText: '' };

  var frame = doc.createElement('iframe');
  frame.src = origin + '/widget/frame.html#' + params.toString();
  frame.title = 'Chat';
  var style = frame.style;
  style.cssText = 'position:fixed;bottom:0;border:0;margin:0;padding:0;background:transparent;' +
    'color-scheme:normal;z-index:2147483000;width:0;height:0;max-width:100%;max-height:100%;' +
    'visibility:hidden';

  function post(message) {
    message.sb = 1;
    if (ready && frame.contentWindow) frame.contentWindow.postMessage(message, origin);
    else outbox.push(message);
  }

  function small() {
    return w.innerWidth < 480;
  }

  /** Sizes the frame to what it shows: the button, the button with a greeting, or the window. */
  function layout() {
    style.display = state.hidden ? 'none' : 'block';
    var left = state.position === 'LEFT';
    style.left = left ? '0' : 'auto';
    style.right = left ? 'auto' : '0';
    if (state.open && small()) {
      style.width = '100%';
      style.height = '100%';
      style.top = '0';
    } else {
      style.top = 'auto';
      if (state.open) {
        style.width = '400px';
        style.height = Math.min(720, w.innerHeight) + 'px';
      } else if (state.bubble) {
        style.width = '340px';
        style.height = '260px';
      } else {
        style.width = '96px';
        style.height = '96px';
      }
    }
    post({ type: 'viewport', small: small() });
  }

  function page() {
    post({ type: 'page', url: location.href, title: doc.title, referrer: doc.referrer });
  }

  // Single-page apps change the address without a page load.
  ['pushState', 'replaceState'].forEach(function (name) {
    var original = history[name];
    history[name] = function () {
      var result = original.apply(this, arguments);
      setTimeout(page, 0);
      return result;
    };
  });
  w.addEventListener('popstate', page);
  w.addEventListener('hashchange', page);
  w.addEventListener('resize', layout);

  // The tab title flashes while the tab is hidden and messages are unread.
  var title = doc.title;
  var flashing = 0;
  function flash() {
    var should = doc.hidden && state.unread > 0;
    if (should && !flashing) {
      title = doc.title;
      var on = false;
      flashing = w.setInterval(function () {
        on = !on;
        doc.title = on ? '(' + state.unread + ') ' + (state.flashText || '✉') : title;
      }, 1000);
    } else if (!should && flashing) {
      w.clearInterval(flashing);
      flashing = 0;
      doc.title = title;
    }
  }
  doc.addEventListener('visibilitychange', flash);

  w.addEventListener('message', function (event) {
    if (event.source !== frame.contentWindow || event.origin !== origin) return;
    var data = event.data;
    if (!data || data.sb !== 1) return;
    if (data.type === 'ready') {
      ready = true;
      style.visibility = 'visible';
      // What the frame keeps here, then the host's calls, then the page: the frame starts the
      // visitor's session once it knows the page, with everything it was told before.
      post({ type: 'stored', value: readStored() });
      var pending = outbox;
      outbox = [];
      pending.forEach(function (message) {
        post(message);
      });
      page();
      layout();
    } else if (data.type === 'store') {
      try {
        localStorage.setItem(storeKey, String(data.value));
      } catch (err) {
        // Storage off: the chat lasts as long as the page.
      }
    } else if (data.type === 'state') {
      state = data.state;
      layout();
      flash();
    } else if (data.type === 'event') {
      (handlers[data.name] || []).forEach(function (fn) {
        try {
          fn(data.detail);
        } catch (err) {
          setTimeout(function () { throw err; });
        }
      });
    }
  });

  var api = {
    loaded: true,
    /** @param {{name?: string, email?: string, userId?: string, signature?: string}} who */
    identify: function (who) {
      post({ type: 'identify', who: who || {} });
    },
    open: function () {
      post({ type: 'open' });
    },
    close: function () {
      post({ type: 'close' });
    },
    /** @param {string} name @param {Function} fn */
    on: function (name, fn) {
      (handlers[name] = handlers[name] || []).push(fn);
    },
  };
  w.Switchboard = api;
  queued.forEach(function (call) {
    var fn = api[call[0]];
    if (typeof fn === 'function') fn.apply(api, call.slice(1));
  });

  function mount() {
    doc.body.appendChild(frame);
  }
  if (doc.body) mount();
  else doc.addEventListener('DOMContentLoaded', mount);
})();
