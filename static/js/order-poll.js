// The WeChat Pay QR page: ask the server every two seconds whether the order is settled, and go
// back to the order page once it is (paid, declined, expired). The server decides; this only asks.
(function () {
  var box = document.querySelector("[data-poll]");
  if (!box) { return; }
  function poll() {
    fetch(box.dataset.poll, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (state) {
        if (state && (state.status !== "awaiting_payment" || state.declined)) {
          window.location.assign(box.dataset.order);
        } else {
          window.setTimeout(poll, 2000);
        }
      })
      .catch(function () { window.setTimeout(poll, 4000); });
  }
  window.setTimeout(poll, 2000);
})();
