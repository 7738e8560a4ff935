// The Stripe Payment Element (real Stripe keys only). Fulfilment waits for the signed webhook;
// the return page only shows the state the server knows.
(function () {
  var form = document.getElementById("payment-form");
  if (!form || typeof Stripe === "undefined") { return; }
  var stripe = Stripe(form.dataset.key);
  var elements = stripe.elements({ clientSecret: form.dataset.secret, locale: document.documentElement.lang === "en" ? "en" : "zh" });
  elements.create("payment").mount("#payment-element");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    document.getElementById("pay").disabled = true;
    stripe.confirmPayment({ elements: elements, confirmParams: { return_url: form.dataset.return } }).then(function (result) {
      if (result.error) {
        var message = document.getElementById("payment-message");
        message.textContent = result.error.message;
        message.hidden = false;
        document.getElementById("pay").disabled = false;
      }
    });
  });
})();
