/*
 * A stand-in for Stripe.js v3, served by the fake Stripe server (integrations/fakes/stripe.py)
 * at /js.stripe.com/v3/, for development and tests. It has the part of Stripe.js the portal
 * uses: Stripe(publishableKey).elements().create("card"), element.mount(target),
 * element.on("change", handler), stripe.createPaymentMethod({type: "card", card: element}),
 * which resolves to {paymentMethod} or {error: {message, code}} as Stripe.js does.
 *
 * Real Elements draw their inputs in an iframe served by Stripe; this one draws plain inputs
 * with no name attribute, so a form around them never sends them to the app: the card goes
 * only to the fake's POST /v1/payment_methods, made with the publishable key, as Stripe.js
 * sends it.
 */
(function () {
  "use strict";
  var origin = new URL(document.currentScript.src).origin;
  var made = 0;

  function CardElement() {
    this.inputs = null;
    this.handlers = {};
  }

  CardElement.prototype.mount = function (target) {
    var host = typeof target === "string" ? document.querySelector(target) : target;
    var id = "fake-stripe-card-" + ++made;
    var self = this;
    var fields = [
      ["number", "Card number", "cc-number", "1234 1234 1234 1234", 19],
      ["expiry", "Expiry (MM / YY)", "cc-exp", "MM / YY", 7],
      ["cvc", "Security code (CVC)", "cc-csc", "CVC", 4],
    ];
    var box = document.createElement("div");
    box.className = "fake-stripe-card";
    this.inputs = {};
    fields.forEach(function (field) {
      var label = document.createElement("label");
      var input = document.createElement("input");
      label.htmlFor = id + "-" + field[0];
      label.textContent = field[1];
      input.id = id + "-" + field[0];
      input.type = "text";
      input.inputMode = "numeric";
      input.autocomplete = field[2];
      input.placeholder = field[3];
      input.maxLength = field[4];
      input.addEventListener("input", function () {
        (self.handlers.change || []).forEach(function (handler) {
          handler({ elementType: "card", empty: !input.value, complete: false, error: undefined });
        });
      });
      self.inputs[field[0]] = input;
      var row = document.createElement("div");
      row.className = "fake-stripe-field";
      row.appendChild(label);
      row.appendChild(input);
      box.appendChild(row);
    });
    host.appendChild(box);
  };

  CardElement.prototype.on = function (event, handler) {
    (this.handlers[event] = this.handlers[event] || []).push(handler);
  };

  CardElement.prototype.focus = function () {
    if (this.inputs) this.inputs.number.focus();
  };

  function clearCard(element) {
    Object.keys(element.inputs).forEach(function (name) {
      element.inputs[name].value = "";
    });
  }

  window.Stripe = function (publishableKey) {
    return {
      elements: function () {
        return {
          create: function (type) {
            if (type !== "card") throw new Error("This Stripe.js stand-in only makes card elements");
            return new CardElement();
          },
        };
      },
      createPaymentMethod: function (params) {
        var element = params.card;
        var expiry = element.inputs.expiry.value.split("/");
        var body = new URLSearchParams({
          key: publishableKey,
          type: "card",
          "card[number]": element.inputs.number.value.replace(/\s/g, ""),
          "card[exp_month]": (expiry[0] || "").trim(),
          "card[exp_year]": (expiry[1] || "").trim(),
          "card[cvc]": element.inputs.cvc.value.trim(),
        });
        return fetch(origin + "/v1/payment_methods", { method: "POST", body: body })
          .then(function (response) {
            return response.json();
          })
          .then(function (answer) {
            if (answer.error) return { error: answer.error };
            clearCard(element);
            return { paymentMethod: answer };
          })
          .catch(function () {
            return { error: { type: "api_connection_error", message: "Could not reach Stripe." } };
          });
      },
    };
  };
})();
