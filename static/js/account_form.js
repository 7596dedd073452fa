// "Use this mode" after "Detect the mode" on the account form: sets the encryption select
// to the mode the server showed. A file of its own: the CSP allows no inline script.
(function () {
  "use strict";
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest("[data-use-mode]");
    if (!button) return;
    var select = document.getElementById("id_mode");
    if (!select) return;
    select.value = button.dataset.useMode;
    select.dispatchEvent(new Event("change", { bubbles: true }));
    button.disabled = true;
    button.textContent = button.dataset.done;
  });
})();
