// Small behaviours that need script; every page also works without it.
document.addEventListener("htmx:confirm", (event) => {
  // Forms with data-confirm ask before an htmx request (no inline script under the CSP).
  const message = event.detail.elt.getAttribute("data-confirm");
  if (message && !window.confirm(message)) event.preventDefault();
});

document.addEventListener("htmx:oobBeforeSwap", (event) => {
  // Live summaries come with every poll. Swapping in the same text would make screen
  // readers read it out again, so only a summary whose text changed is swapped.
  const target = event.detail.target;
  if (target.closest("[data-live-summary]") && textOf(target) === textOf(event.detail.fragment)) {
    event.detail.shouldSwap = false;
  }
});

function textOf(node) {
  return node.textContent.replace(/\s+/g, " ").trim();
}

document.addEventListener("htmx:beforeSwap", (event) => {
  // A refused action answers 4xx with its reason and HX-Retarget (the flash area):
  // show that reason instead of htmx's default of dropping error answers.
  const xhr = event.detail.xhr;
  if (xhr.status >= 400 && xhr.status < 500 && xhr.getResponseHeader("HX-Retarget")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
