// The kiosk screen: the server pushes each new screen over server-sent events; touches are posted back.
(function () {
  "use strict";
  const screen = document.getElementById("screen");
  const offline = document.getElementById("offline");
  let countdown = null;

  function startCountdown() {
    if (countdown) { clearInterval(countdown); countdown = null; }
    const el = screen.querySelector(".countdown");
    if (!el) { return; }
    let left = parseInt(el.dataset.seconds, 10);
    countdown = setInterval(function () {
      left = Math.max(0, left - 1);
      el.textContent = String(left);
    }, 1000);
  }

  const source = new EventSource("/events");
  source.addEventListener("screen", function (event) {
    screen.innerHTML = event.data;
    const state = screen.firstElementChild;
    if (state) { document.documentElement.lang = state.dataset.lang; }
    offline.hidden = true;
    const last = screen.querySelector("tr.last");
    if (last) { last.scrollIntoView({ block: "nearest" }); }
    startCountdown();
  });
  // One line changed (a scan, a quantity): that row, the totals and the notice, not the whole screen.
  source.addEventListener("line", function (event) {
    const update = JSON.parse(event.data);
    const old = screen.querySelector('tr.line[data-line="' + update.line + '"]');
    const body = screen.querySelector("#lines tbody");
    const previous = screen.querySelector("tr.line.last");
    if (previous) { previous.classList.remove("last"); }
    if (old) { old.outerHTML = update.row; } else { body.insertAdjacentHTML("beforeend", update.row); }
    screen.querySelector("#hold").outerHTML = update.hold;
    screen.querySelector("#notice-slot").innerHTML = update.notice;
    const hold = screen.querySelector("#hold");
    const total = parseInt(hold.dataset.total, 10);
    const limit = parseInt(hold.dataset.hold, 10);
    screen.querySelectorAll("button.more").forEach(function (button) {
      button.disabled = total + parseInt(button.dataset.step, 10) > limit;
    });
    const state = screen.firstElementChild;
    state.dataset.version = event.lastEventId;
    const last = screen.querySelector("tr.last");
    if (last) { last.scrollIntoView({ block: "nearest" }); }
  });
  source.addEventListener("error", function () { offline.hidden = false; });

  screen.addEventListener("click", function (event) {
    const button = event.target.closest("button[data-action]");
    if (!button || button.disabled) { return; }
    const body = { action: button.dataset.action };
    if (button.dataset.line) { body.line = parseInt(button.dataset.line, 10); }
    if (button.dataset.qty) { body.qty = parseInt(button.dataset.qty, 10); }
    if (button.dataset.lang) { body.lang = button.dataset.lang; }
    fetch("/action", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    }).catch(function () { offline.hidden = false; });
  });
  startCountdown();
})();
