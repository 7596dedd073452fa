// Drag and drop for the preferred order: SortableJS moves the <li>s, then the
// form (hx-trigger="end": Sortable's bubbling event) posts the new order of its hidden inputs.
(function () {
  "use strict";
  function init(root) {
    root.querySelectorAll("[data-sortable]").forEach(function (list) {
      if (list.dataset.sortableReady) return;
      list.dataset.sortableReady = "1";
      new Sortable(list, {
        handle: ".handle",
        animation: 150,
        ghostClass: "drag-ghost",
        forceFallback: true, // pointer events instead of native drag: same in every browser
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    init(document);
    document.body.addEventListener("htmx:load", function (evt) { init(evt.target); });
  });
})();
