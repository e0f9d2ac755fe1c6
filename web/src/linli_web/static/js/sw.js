/* The service worker: OFFLINE_URL, PRECACHE, INBOX_URL and ICON_URL are prepended by the server (/sw.js).
   It keeps only the offline page and its stylesheet, never a page with personal data: pages go
   to the network, and when the network fails the offline page is shown instead. */
const CACHE = "linli-offline-v1";

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(PRECACHE)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim())
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET" || request.mode !== "navigate") return;
  event.respondWith(fetch(request).catch(() => caches.match(OFFLINE_URL)));
});

// Web Push: the notifications service sends {title, body, tag, data} (encrypted for this browser);
// it is shown as a notification, and a tap opens the inbox.
self.addEventListener("push", (event) => {
  let message = {};
  try {
    message = event.data ? event.data.json() : {};
  } catch (error) {
    message = { body: event.data ? event.data.text() : "" };
  }
  event.waitUntil(
    self.registration.showNotification(message.title || "Linli", {
      body: message.body || "",
      tag: message.tag || undefined,
      icon: ICON_URL,
      data: { url: INBOX_URL },
    })
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = new URL(INBOX_URL, self.location.origin).href;
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      const open = windows.find((w) => w.url === target && "focus" in w);
      return open ? open.focus() : self.clients.openWindow(target);
    })
  );
});
