// Codes travel in links after the "#" (the fragment), which browsers never send to a
// server: no proxy or access log sees them. This fills each field marked
// data-fragment-field="name" with the fragment's "name" value, then drops the fragment
// from the address bar and the history. Without JavaScript the code is typed instead.
(function () {
  "use strict";
  var hash = window.location.hash;
  if (!hash || hash.length < 2) {
    return;
  }
  var values = new URLSearchParams(hash.slice(1));
  var fields = document.querySelectorAll("[data-fragment-field]");
  for (var i = 0; i < fields.length; i += 1) {
    var value = values.get(fields[i].getAttribute("data-fragment-field"));
    if (value && !fields[i].value) {
      fields[i].value = value;
    }
  }
  if (window.history && window.history.replaceState) {
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
  }
}());
