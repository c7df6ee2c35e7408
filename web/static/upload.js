// Upload progress for the portal's file forms (upload, new version).
// Progressive enhancement: without JavaScript the form posts as usual. With it,
// the same form data (CSRF field included) goes by XMLHttpRequest so the
// browser can report progress; the answer then replaces the page: a redirect
// (a 204 naming the next page) is followed, an error page (the form with its
// message) replaces this one.
"use strict";

(function () {
  function enhance(form) {
    var box = form.querySelector(".upload-progress");
    var bar = box && box.querySelector("progress");
    var text = box && box.querySelector("[data-progress-text]");
    if (!bar) {
      return;
    }
    form.addEventListener("submit", function (event) {
      if (!window.FormData || !window.XMLHttpRequest || !form.checkValidity()) {
        return;
      }
      event.preventDefault();
      var button = form.querySelector("button[type=submit]");
      if (button) {
        button.disabled = true;
      }
      box.hidden = false;
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-Sekisho-Upload", "progress");
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) {
          var percent = Math.floor((e.loaded / e.total) * 100);
          bar.value = percent;
          text.textContent = percent + "% sent";
        }
      });
      xhr.upload.addEventListener("load", function () {
        bar.value = 100;
        text.textContent = "Sent; encrypting and anchoring…";
      });
      xhr.addEventListener("load", function () {
        var next = xhr.getResponseHeader("X-Sekisho-Location");
        if (xhr.status === 204 && next && next.charAt(0) === "/" && next.charAt(1) !== "/") {
          window.location.assign(next);
          return;
        }
        var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
        document.title = doc.title;
        document.body.replaceWith(document.adoptNode(doc.body));
        var again = document.querySelector("form[data-progress]");
        if (again) {
          enhance(again);
        }
        var summary = document.getElementById("error-summary");
        if (summary) {
          summary.setAttribute("tabindex", "-1");
          summary.focus();
        }
      });
      xhr.addEventListener("error", function () {
        text.textContent = "The upload failed: check your connection and try again.";
        if (button) {
          button.disabled = false;
        }
      });
      xhr.send(new FormData(form));
    });
  }
  var forms = document.querySelectorAll("form[data-progress]");
  for (var i = 0; i < forms.length; i += 1) {
    enhance(forms[i]);
  }
})();
