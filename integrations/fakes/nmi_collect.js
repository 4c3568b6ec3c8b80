/*
 * A stand-in for NMI's Collect.js (inline variant), served by the fake NMI server
 * (integrations/fakes/nmi.py) at /token/Collect.js, for development and tests. It has the part
 * of Collect.js the portal uses: the tokenization key in the script tag's
 * data-tokenization-key, CollectJS.configure({variant: "inline", fields: {ccnumber, ccexp, cvv:
 * {selector, title, placeholder}}, callback, validationCallback}) and
 * CollectJS.startPaymentRequest(), whose success calls callback({tokenType: "inline", token,
 * card: {number (masked), bin, exp, type}}) as Collect.js does.
 *
 * Real Collect.js draws each field in an iframe served by NMI; this one draws plain inputs with
 * no name attribute, so a form around them never sends them to the app: the card goes only to
 * this fake's POST /token/api/create (the stand-in's own endpoint: NMI does not document the one
 * its script calls).
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var origin = new URL(script.src).origin;
  var tokenizationKey = script.getAttribute("data-tokenization-key") || "";
  var config = null;
  var inputs = {};

  function mount(name, field) {
    var host = document.querySelector(field.selector);
    var input = document.createElement("input");
    input.type = "text";
    input.inputMode = "numeric";
    input.id = "fake-collect-" + name;
    input.setAttribute("aria-label", field.title || name);
    input.placeholder = field.placeholder || "";
    input.autocomplete = { ccnumber: "cc-number", ccexp: "cc-exp", cvv: "cc-csc" }[name];
    host.appendChild(input);
    inputs[name] = input;
  }

  function invalid(field, message) {
    if (config.validationCallback) config.validationCallback(field, false, message);
  }

  window.CollectJS = {
    configure: function (options) {
      config = options;
      inputs = {};
      Object.keys(options.fields || {}).forEach(function (name) {
        mount(name, options.fields[name]);
      });
    },
    startPaymentRequest: function () {
      var body = new URLSearchParams({
        tokenization_key: tokenizationKey,
        ccnumber: inputs.ccnumber.value.replace(/\s/g, ""),
        ccexp: inputs.ccexp.value.replace(/\D/g, ""),
        cvv: inputs.cvv ? inputs.cvv.value.trim() : "",
      });
      fetch(origin + "/token/api/create", { method: "POST", body: body })
        .then(function (response) {
          return response.json();
        })
        .then(function (answer) {
          if (answer.error) {
            invalid(answer.field || "ccnumber", answer.error);
            return;
          }
          Object.keys(inputs).forEach(function (name) {
            inputs[name].value = "";
          });
          config.callback(answer);
        })
        .catch(function () {
          invalid("ccnumber", "Could not reach the payment processor.");
        });
    },
  };
})();
