// Security keys (WebAuthn) for the Sekisho portal: a same-origin static script, no inline code.
// A form marked data-webauthn="register|sign-in|step-up" asks data-options for the ceremony's
// options, runs navigator.credentials.create/get, posts the key's answer as JSON to
// data-finish (CSRF token in X-CSRF-Token) and follows the "redirect" of the answer.
"use strict";

(function () {
  function toBytes(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) { base64 += "="; }
    var raw = atob(base64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i += 1) { bytes[i] = raw.charCodeAt(i); }
    return bytes.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i += 1) { raw += String.fromCharCode(bytes[i]); }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (item) {
      return Object.assign({}, item, { id: toBytes(item.id) });
    });
  }

  function creationOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = toBytes(json.challenge);
    options.user = Object.assign({}, json.user, { id: toBytes(json.user.id) });
    options.excludeCredentials = descriptors(json.excludeCredentials);
    return options;
  }

  function requestOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = toBytes(json.challenge);
    options.allowCredentials = descriptors(json.allowCredentials);
    return options;
  }

  function credentialJson(credential) {
    var response = credential.response;
    var out = {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: { clientDataJSON: toText(response.clientDataJSON) }
    };
    if (credential.authenticatorAttachment) {
      out.authenticatorAttachment = credential.authenticatorAttachment;
    }
    if (response.attestationObject) {
      out.response.attestationObject = toText(response.attestationObject);
      out.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      out.response.authenticatorData = toText(response.authenticatorData);
      out.response.signature = toText(response.signature);
      if (response.userHandle) { out.response.userHandle = toText(response.userHandle); }
    }
    return out;
  }

  function field(form, name) {
    var input = form.querySelector("[name='" + name + "']");
    return input ? input.value : "";
  }

  function post(form, url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": field(form, "csrf") },
      body: JSON.stringify(body)
    }).then(function (answer) {
      return answer.json().then(function (json) {
        if (!answer.ok) { throw new Error(json.message || "The request was refused."); }
        return json;
      });
    });
  }

  function show(form, message) {
    var box = form.querySelector("[data-webauthn-status]");
    if (!box) { return; }
    box.querySelector("p").textContent = message;
    box.hidden = false;
    box.focus();
  }

  function ceremony(form) {
    var kind = form.getAttribute("data-webauthn");
    var name = field(form, "name");
    return post(form, form.getAttribute("data-options"), { name: name }).then(function (json) {
      if (kind === "register") {
        return navigator.credentials.create({ publicKey: creationOptions(json) });
      }
      return navigator.credentials.get({ publicKey: requestOptions(json) });
    }).then(function (credential) {
      if (!credential) { throw new Error("The security key did not answer."); }
      return post(form, form.getAttribute("data-finish"), {
        credential: credentialJson(credential),
        next: field(form, "next")
      });
    }).then(function (json) {
      window.location.assign(json.redirect || "/");
    });
  }

  function start(event) {
    var form = event.target;
    event.preventDefault();
    if (!window.PublicKeyCredential) {
      show(form, "This browser does not support security keys.");
      return;
    }
    var button = form.querySelector("button[type='submit']");
    if (button) { button.disabled = true; }
    ceremony(form).catch(function (error) {
      var message = error && error.name === "NotAllowedError"
        ? "The security key was not used, or the request timed out. Try again."
        : (error && error.message) || "The security key could not be used.";
      show(form, message);
    }).then(function () {
      if (button) { button.disabled = false; }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var forms = document.querySelectorAll("form[data-webauthn]");
    for (var i = 0; i < forms.length; i += 1) { forms[i].addEventListener("submit", start); }
  });
})();
