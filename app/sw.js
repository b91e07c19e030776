/* The agent app's service worker: keeps the app's own files so it opens without a network
 * (the shell; chats need the server anyway), and shows Web Push notifications while the app is
 * closed, opening the chat when one is tapped. The API (/graphql) is never cached.
 */
// @ts-check
(function () {
  'use strict';

  /** @type {any} */
  var worker = self;
  var CACHE = 'switchboard-app-1';
  var SHELL = ['./', 'app.js', 'app.css', 'manifest.webmanifest', 'icon.svg', 'icon-192.png', 'icon-512.png'];

  worker.addEventListener('install', function (/** @type {any} */ event) {
    event.waitUntil(caches.open(CACHE).then(function (cache) {
      return cache.addAll(SHELL);
    }).then(function () {
      return worker.skipWaiting();
    }));
  });

  worker.addEventListener('activate', function (/** @type {any} */ event) {
    event.waitUntil(caches.keys().then(function (names) {
      return Promise.all(names.filter(function (name) {
        return name !== CACHE;
      }).map(function (name) {
        return caches.delete(name);
      }));
    }).then(function () {
      return worker.clients.claim();
    }));
  });

  // The network first, so a deploy shows at once; the kept copy when there is no network.
  worker.addEventListener('fetch', function (/** @type {any} */ event) {
    var request = event.request;
    var url = new URL(request.url);
    if (request.method !== 'GET' || url.origin !== location.origin || url.pathname.indexOf('/app/') !== 0) return;
    var key = request.mode === 'navigate' ? './' : request;
    event.respondWith(fetch(request).then(function (response) {
      if (response.ok) {
        var copy = response.clone();
        caches.open(CACHE).then(function (cache) {
          return cache.put(key, copy);
        });
      }
      return response;
    }).catch(function () {
      return caches.match(key).then(function (kept) {
        return kept || Response.error();
      });
    }));
  });

  // The server's payload: {type, chatId, title, body, …} (see README, "Web Push").
  worker.addEventListener('push', function (/** @type {any} */ event) {
    var data = {};
    try {
      data = event.data ? event.data.json() : {};
    } catch (err) {
      data = { body: event.data ? event.data.text() : '' };
    }
    /** @type {any} */
    var payload = data;
    event.waitUntil(worker.registration.showNotification(payload.title || 'Switchboard', {
      body: payload.body || '',
      // One notification per chat: a newer push about it replaces the older one.
      tag: payload.chatId || payload.type || 'switchboard',
      renotify: true,
      icon: 'icon-192.png',
      data: payload,
    }));
  });

  worker.addEventListener('notificationclick', function (/** @type {any} */ event) {
    event.notification.close();
    var chatId = (event.notification.data || {}).chatId;
    var target = new URL(chatId ? '/app/#/chats/' + encodeURIComponent(chatId) : '/app/', location.origin).href;
    event.waitUntil(worker.clients.matchAll({ type: 'window', includeUncontrolled: true }).then(function (/** @type {any[]} */ windows) {
      var app = windows.find(function (client) {
        return new URL(client.url).pathname.indexOf('/app/') === 0;
      });
      if (app) {
        app.postMessage({ type: 'open-chat', chatId: chatId });
        return app.focus();
      }
      return worker.clients.openWindow(target);
    }));
  });
})();
