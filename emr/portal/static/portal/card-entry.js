// Served by the app (no inline script): the card form. The gateway's own script (Stripe.js
// Elements or NMI Collect.js, loaded just before this one) draws the card fields and turns the
// card into a token; only the token is posted here.
(function () {
  "use strict";
  const form = document.querySelector("form[data-card-entry]");
  if (!form) {
    return;
  }
  const token = form.querySelector("input[name=token]");
  const status = form.querySelector("[data-card-status]");
  const button = form.querySelector("button[type=submit]");

  function refuse(message) {
    status.textContent = message || "The card could not be checked. Try again.";
    status.hidden = false;
    status.focus();
    button.disabled = false;
  }

  function submitWith(value) {
    token.value = value;
    form.submit();
  }

  let tokenise;
  if (form.dataset.gateway === "stripe" && window.Stripe) {
    const stripe = window.Stripe(form.dataset.key);
    const card = stripe.elements().create("card");
    card.mount(form.querySelector("[data-card-fields]"));
    tokenise = function () {
      stripe.createPaymentMethod({ type: "card", card: card }).then(function (result) {
        if (result.error) {
          refuse(result.error.message);
        } else {
          submitWith(result.paymentMethod.id);
        }
      });
    };
  } else if (form.dataset.gateway === "nmi" && window.CollectJS) {
    window.CollectJS.configure({
      variant: "inline",
      fields: {
        ccnumber: { selector: "#ccnumber", title: "Card number" },
        ccexp: { selector: "#ccexp", title: "Expiry (MM / YY)", placeholder: "MM / YY" },
        cvv: { selector: "#cvv", title: "Security code (CVV)" },
      },
      callback: function (response) {
        submitWith(response.token);
      },
      validationCallback: function (field, valid, message) {
        if (!valid) {
          refuse(message);
        }
      },
    });
    tokenise = function () {
      window.CollectJS.startPaymentRequest();
    };
  } else {
    refuse("The card form could not load. Reload the page, or contact the clinic to add a card.");
    button.disabled = true;
    return;
  }

  form.addEventListener("submit", function (event) {
    if (token.value) {
      return;
    }
    event.preventDefault();
    status.hidden = true;
    button.disabled = true;
    tokenise();
  });
})();
