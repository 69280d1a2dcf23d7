// Live updates for the panel: listen to the lane's changes (server-sent events on /live) and fetch the
// parts of this page marked data-live again, in place. Nothing reloads, so an opened <details> stays open
// and a half-filled form keeps what was typed. Without a stream (too many pages open, or no support), the
// same parts are fetched every few seconds instead.
"use strict";

(function () {
  const FALLBACK_MS = 5000;
  let busy = false;
  let again = false;

  function openDetails(root) {
    const open = new Set();
    root.querySelectorAll("details[open]").forEach((d, i) => open.add(d.id || d.closest("[id]").id + ":" + i));
    return open;
  }

  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const answer = await fetch(location.href, {
        credentials: "same-origin", cache: "no-store", headers: { "X-Panel-Live": "1" },
      });
      if (answer.redirected || !answer.ok) { return; }  // logged out, or the page went away
      const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
      document.querySelectorAll("[data-live][id]").forEach((old) => {
        const next = fresh.getElementById(old.id);
        if (!next) { return; }
        const open = openDetails(old);
        next.querySelectorAll("details").forEach((d, i) => {
          if (open.has(d.id || d.closest("[id]").id + ":" + i)) { d.open = true; }
        });
        old.replaceWith(next);
      });
      document.body.dataset.version = String(Number(document.body.dataset.version || 0) + 1);
    } catch (e) {
      // the lane restarting: the next change or tick tries again
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  }

  function poll() {
    document.getElementById("live-note").textContent = "Updates every few seconds.";
    setInterval(refresh, FALLBACK_MS);
  }

  const url = document.body.dataset.liveUrl;
  if (!url || !document.querySelector("[data-live]")) { return; }
  if (!window.EventSource) { poll(); return; }
  const source = new EventSource(url);
  source.addEventListener("change", refresh);
  window.addEventListener("pagehide", () => source.close());  // frees the server's thread at once
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) { poll(); }
  });
})();
