// Live totals while tonnes are typed: on a catalog or project buy form (price × tonnes) and on the
// order page (each line and the total). Only a preview: the server prices every line again.
(function () {
  var lang = document.documentElement.lang === "en" ? "en" : "zh-CN";
  var money = new Intl.NumberFormat(lang, { style: "currency", currency: "CNY" });
  function fen(text) {
    var match = /^(\d+)(?:\.(\d{1,2}))?$/.exec(text || "");
    if (!match) { return null; }
    return parseInt(match[1], 10) * 100 + parseInt(((match[2] || "") + "00").slice(0, 2), 10);
  }
  function tonnes(input) {
    return /^\d+$/.test(input.value) && parseInt(input.value, 10) > 0 ? parseInt(input.value, 10) : null;
  }
  document.querySelectorAll("form[data-price]").forEach(function (form) {
    var input = form.querySelector("input[name=quantity]");
    var out = form.querySelector("output");
    var price = fen(form.dataset.price);
    function update() {
      var n = tonnes(input);
      out.textContent = n === null || price === null ? "" : "= " + money.format(n * price / 100);
    }
    input.addEventListener("input", update);
    update();
  });
  var count = new Intl.NumberFormat(lang);
  document.querySelectorAll("form[data-total-form]").forEach(function (form) {
    var total = form.querySelector("[data-total]");
    var totalTonnes = form.querySelector("[data-total-tonnes]");
    function update() {
      var sum = 0;
      var weight = 0;
      form.querySelectorAll("tr[data-line]").forEach(function (row) {
        var price = fen(row.querySelector("[data-price]").dataset.price);
        var n = tonnes(row.querySelector("input[name=quantity]"));
        var cell = row.querySelector("[data-amount]");
        if (n !== null) { weight += n; }
        if (price === null || n === null) { cell.textContent = "—"; return; }
        cell.textContent = money.format(n * price / 100);
        sum += n * price;
      });
      total.textContent = money.format(sum / 100);
      if (totalTonnes) { totalTonnes.textContent = totalTonnes.dataset.pattern.replace("{n}", count.format(weight)); }
    }
    form.addEventListener("input", update);
  });
})();
