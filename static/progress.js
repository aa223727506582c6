/* Live progress of a newsletter send: polls progress.json and updates the
   figures the page rendered. The page works without this script; it only
   saves the reader a reload. */
(function () {
  "use strict";
  var section = document.querySelector("[data-progress-url]");
  if (!section || !window.fetch) { return; }
  var url = section.getAttribute("data-progress-url");
  var initial = section.getAttribute("data-progress-initial");
  var bar = section.querySelector("progress");
  var INTERVAL = 2000;

  function setText(selector, value) {
    var node = section.querySelector(selector);
    if (node) { node.textContent = String(value); }
  }

  function update(data) {
    if (bar) {
      bar.max = data.total || 1;
      bar.value = data.done;
      bar.textContent = data.percent + " %";
    }
    setText("[data-progress-sent]", data.sent);
    setText("[data-progress-total]", data.total);
    setText("[data-progress-pending]", data.pending);
    Object.keys(data.counts).forEach(function (status) {
      setText('[data-progress-count="' + status + '"]', data.counts[status]);
    });
    var label = document.querySelector("[data-progress-status]");
    if (label) { label.textContent = data.status_label; }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error(response.status); }
        return response.json();
      })
      .then(function (data) {
        update(data);
        if (data.status !== initial) {
          // Sent, paused or cancelled elsewhere: the buttons and figures change too.
          window.location.reload();
          return;
        }
        window.setTimeout(poll, INTERVAL);
      })
      .catch(function () { window.setTimeout(poll, INTERVAL * 5); });
  }

  window.setTimeout(poll, INTERVAL);
}());
