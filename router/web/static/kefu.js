// Behaviour every console page shares. Pages carry no inline scripts or handlers (the Content-Security-Policy
// allows only scripts from /static), so markup asks for behaviour with data attributes instead.
(function () {
  "use strict";
  // <select data-autosubmit> sends its form as soon as the choice changes (the presence switch).
  document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
    select.addEventListener("change", () => select.form.submit());
  });
})();
