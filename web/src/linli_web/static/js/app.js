/* Linli web: small enhancements. Every page works without this file. */
(function () {
  "use strict";

  // The installable web app: a service worker that keeps only the offline page.
  if ("serviceWorker" in navigator && window.isSecureContext) {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(function () {});
  }

  // Web Push: "Turn on alerts" subscribes this browser with the platform's VAPID key and hands the
  // subscription to the server (/me/alerts), which registers it as a device through the gateway.
  function base64UrlBytes(text) {
    var raw = atob((text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/"));
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  function alertsButton() {
    var button = document.getElementById("alerts-on");
    var status = document.getElementById("alerts-status");
    if (!button || !status || !("serviceWorker" in navigator) || !("PushManager" in window) ||
        !("Notification" in window) || !window.isSecureContext) return;
    var csrf = document.querySelector("input[name=csrf_token]");
    button.hidden = false;
    button.addEventListener("click", function () {
      button.disabled = true;
      Notification.requestPermission().then(function (permission) {
        if (permission !== "granted") throw new Error("blocked");
        return navigator.serviceWorker.ready;
      }).then(function (registration) {
        return registration.pushManager.getSubscription().then(function (existing) {
          return existing || registration.pushManager.subscribe({
            userVisibleOnly: true, applicationServerKey: base64UrlBytes(button.dataset.key)
          });
        });
      }).then(function (subscription) {
        return fetch(button.dataset.url, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": csrf ? csrf.value : "" },
          body: JSON.stringify(subscription.toJSON())
        });
      }).then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) throw new Error("refused");
          status.textContent = body.message;
        });
      }).catch(function (error) {
        status.textContent = error && error.message === "blocked" ? button.dataset.blocked : button.dataset.failed;
        button.disabled = false;
      });
    });
  }

  function ready(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }

  ready(function () {
    // Move focus to an error summary so screen readers announce it.
    var summary = document.querySelector("[data-autofocus]");
    if (summary) summary.focus();

    alertsButton();

    // A form that must be sent once: disable its button after the first press.
    document.querySelectorAll("form[data-once]").forEach(function (form) {
      form.addEventListener("submit", function () {
        var button = form.querySelector("button");
        if (button) setTimeout(function () { button.disabled = true; }, 0);
      });
    });

    // Photos: resize in the browser before uploading (a phone's 5 MB photo becomes ~300 KB).
    document.querySelectorAll("form[data-resize-photo]").forEach(function (form) {
      var input = form.querySelector("input[type=file]");
      if (!input || !window.DataTransfer || !HTMLCanvasElement.prototype.toBlob) return;
      input.addEventListener("change", function () {
        var file = input.files && input.files[0];
        if (!file || !/^image\/(jpeg|png|webp)$/.test(file.type)) return; // HEIC goes as it is: the server converts it
        var url = URL.createObjectURL(file);
        var img = new Image();
        img.onload = function () {
          var max = 1600, w = img.naturalWidth, h = img.naturalHeight;
          var scale = Math.min(1, max / Math.max(w, h));
          if (scale === 1 && file.size < 1500000) { URL.revokeObjectURL(url); return; }
          var canvas = document.createElement("canvas");
          canvas.width = Math.round(w * scale); canvas.height = Math.round(h * scale);
          canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
          canvas.toBlob(function (blob) {
            URL.revokeObjectURL(url);
            if (!blob) return;
            var resized = new File([blob], file.name.replace(/\.\w+$/, "") + ".jpg", { type: "image/jpeg" });
            var transfer = new DataTransfer();
            transfer.items.add(resized);
            input.files = transfer.files;
          }, "image/jpeg", 0.82);
        };
        img.src = url;
      });
    });

    // The unread count follows "mark as read".
    document.body.addEventListener("unread-changed", function () {
      var badge = document.getElementById("unread");
      if (badge && window.htmx) window.htmx.trigger(badge, "refresh");
    });
  });
})();
