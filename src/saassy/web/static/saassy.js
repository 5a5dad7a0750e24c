// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  document.documentElement.classList.remove("no-js");

  // Copy buttons: <button data-copy="text"> or data-copy-target="#id".
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy], [data-copy-target]");
    if (!button) return;
    var text = button.getAttribute("data-copy");
    if (text === null) {
      var target = document.querySelector(button.getAttribute("data-copy-target"));
      text = target ? (target.value !== undefined ? target.value : target.textContent) : "";
    }
    navigator.clipboard.writeText(text).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });

  // The sidebar's menu button on narrow screens.
  document.addEventListener("click", function (event) {
    var toggle = event.target.closest(".menu-toggle");
    if (!toggle) return;
    var sidebar = toggle.closest(".sidebar");
    var open = sidebar.classList.toggle("open");
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
  });

  // Destructive actions confirm in a native <dialog>: <form data-confirm="#dialog-id">.
  // A dialog may ask for a typed confirmation: an input with data-must-equal="text".
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var selector = form.getAttribute("data-confirm");
    if (selector && !form.dataset.confirmed) {
      var dialog = document.querySelector(selector);
      if (dialog && dialog.showModal) {
        event.preventDefault();
        dialog.returnValue = "";
        dialog.showModal();
        dialog.addEventListener("close", function onClose() {
          dialog.removeEventListener("close", onClose);
          if (dialog.returnValue === "confirm") {
            // A live page may have redrawn the form while the dialog was open: submit the one
            // on the page now.
            var current = form.isConnected ? form :
              document.querySelector('form[data-confirm="' + selector + '"]');
            if (!current) return;
            current.dataset.confirmed = "1";
            if (current.requestSubmit) current.requestSubmit(); else current.submit();
          }
        });
        return;
      }
    }
    // No double submissions: the button is disabled while the request runs.
    var submitter = event.submitter;
    if (submitter && !event.defaultPrevented) {
      setTimeout(function () { submitter.disabled = true; submitter.setAttribute("aria-busy", "true"); }, 0);
    }
  });
  document.addEventListener("input", function (event) {
    var input = event.target;
    var expected = input.getAttribute && input.getAttribute("data-must-equal");
    if (expected === null || expected === undefined) return;
    var confirm = input.closest("dialog").querySelector("button[value=confirm]");
    confirm.disabled = input.value !== expected;
  });

  // Relative times: <time datetime="..." data-relative> keeps the server's text until it ages.
  function relative(date) {
    var seconds = Math.round((Date.now() - date.getTime()) / 1000);
    var future = seconds < 0; seconds = Math.abs(seconds);
    var units = [["day", 86400], ["h", 3600], ["min", 60], ["s", 1]];
    for (var i = 0; i < units.length; i++) {
      if (seconds >= units[i][1] || units[i][1] === 1) {
        var n = Math.floor(seconds / units[i][1]);
        var unit = units[i][0] === "day" ? (n === 1 ? " day" : " days") : " " + units[i][0];
        return future ? "in " + n + unit : n + unit + " ago";
      }
    }
  }
  function refreshTimes() {
    document.querySelectorAll("time[data-relative]").forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (!isNaN(date)) el.textContent = relative(date);
    });
  }
  setInterval(refreshTimes, 30000);
})();
