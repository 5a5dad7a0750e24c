// The task pages, enhanced: whole-row links, filters that apply on change, a code editor's tab
// key, select-all, and the task page followed live. Every page works without this file.
(function () {
  "use strict";

  // Whole-row links: a click anywhere on the row but on its own controls opens the task.
  document.addEventListener("click", function (event) {
    var row = event.target.closest("tr[data-href]");
    if (!row || event.target.closest("a, button, input, label, select")) return;
    if (event.metaKey || event.ctrlKey) window.open(row.getAttribute("data-href"));
    else window.location.href = row.getAttribute("data-href");
  });

  // Filters apply as soon as they change (the Filter button remains for keyboards and no-JS).
  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-autosubmit]")) event.target.form.submit();
  });

  // Select every row on the page.
  var all = document.getElementById("select-page");
  if (all) {
    all.hidden = false;
    all.addEventListener("change", function () {
      document.querySelectorAll("input[name=ids]").forEach(function (box) { box.checked = all.checked; });
    });
  }
  var bulk = document.getElementById("bulk-form");
  if (bulk) {
    bulk.addEventListener("submit", function () {
      var summary = document.querySelector("[data-bulk-summary]");
      var action = bulk.querySelector("[name=action]").value === "rerun" ? "Re-run" : "Cancel";
      var matching = document.getElementById("bulk-matching").checked;
      var count = bulk.querySelectorAll("input[name=ids]:checked").length;
      if (summary) {
        summary.textContent = matching
          ? action + " every task matching the filter (up to 1,000)?"
          : action + " " + count + " selected task" + (count === 1 ? "" : "s") + "?";
      }
    }, true);
  }

  // Code editors: Tab inserts four spaces (Escape, then Tab, leaves the field).
  var escaped = false;
  document.addEventListener("keydown", function (event) {
    var area = event.target;
    if (!area.matches || !area.matches("textarea[data-code-editor]")) return;
    if (event.key === "Escape") { escaped = true; return; }
    if (event.key !== "Tab" || event.shiftKey || escaped) { escaped = false; return; }
    event.preventDefault();
    var start = area.selectionStart, end = area.selectionEnd;
    area.setRangeText("    ", start, end, "end");
  });

  // The task page, live: log lines appended, status and timeline refreshed.
  var log = document.getElementById("log");
  if (!log || !window.EventSource || log.hasAttribute("data-finished")) return;
  var lines = document.getElementById("log-lines");
  var follow = document.getElementById("log-follow");
  follow.closest("label").hidden = false;
  var note = document.querySelector("[data-live=refresh]");
  if (note) note.textContent = "Live: this page updates as the task runs.";

  // The server sends ids "attempt-seq"; a reconnecting EventSource resumes after the last one.
  // The first connection starts after the lines the page already shows.
  var url = log.getAttribute("data-events");
  var last = log.getAttribute("data-last-event-id");
  var source = null;
  var seen = last ? last.split("-").map(Number) : [0, 0];

  function after(a, b) { return a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]); }

  function append(data) {
    var key = [data.attempt, data.seq];
    if (!after(key, seen)) return; // already shown
    seen = key;
    var empty = document.getElementById("log-empty");
    if (empty) empty.remove();
    data.data.replace(/\n$/, "").split("\n").forEach(function (text) {
      var item = document.createElement("li");
      item.className = data.stream;
      item.setAttribute("data-attempt", String(data.attempt));
      item.textContent = text;
      lines.appendChild(item);
    });
    if (follow.checked) log.scrollTop = log.scrollHeight;
  }

  // One refresh at a time; a change that arrives meanwhile (the final one above all) is not
  // dropped but fetched again once the running refresh is done.
  var refreshing = false;
  var again = null;
  function refreshParts(final) {
    if (refreshing) {
      again = again === true || final;
      return;
    }
    refreshing = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        // A refusal (rate limit, signed out) is no new state: keep the page as it is.
        if (!response.ok) throw new Error("refresh answered " + response.status);
        return response.text();
      })
      .then(function (html) {
        var page = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (el) {
          var name = el.getAttribute("data-live");
          var fresh = page.querySelector('[data-live="' + name + '"]');
          if (!fresh) {
            if (final || name !== "refresh") el.remove();
          } else if (fresh.outerHTML !== el.outerHTML) {
            // Unchanged parts stay as they are (and keep focus and an open dialog's form).
            el.replaceWith(document.importNode(fresh, true));
          }
        });
        if (final) {
          var done = document.querySelector("[data-live=refresh]");
          if (done) done.remove();
        }
      })
      .catch(function () { /* the next event or the Refresh link tries again */ })
      .finally(function () {
        refreshing = false;
        if (again !== null) {
          var next = again;
          again = null;
          refreshParts(next);
        }
      });
  }

  function connect() {
    // The first connection says where to start through the URL's Last-Event-ID header equivalent.
    source = new EventSource(url + (last ? "?after=" + encodeURIComponent(last) : ""));
    source.addEventListener("log", function (event) { append(JSON.parse(event.data)); });
    source.addEventListener("status", function () { refreshParts(false); });
    source.addEventListener("end", function () {
      source.close();
      refreshParts(true);
    });
  }
  connect();
  if (follow.checked) log.scrollTop = log.scrollHeight;
})();
