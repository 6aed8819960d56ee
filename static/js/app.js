// Small behaviours that need script; every page also works without it.
document.addEventListener("htmx:confirm", (event) => {
  // Forms with data-confirm ask before an htmx request (no inline script under the CSP).
  const message = event.detail.elt.getAttribute("data-confirm");
  if (message && !window.confirm(message)) event.preventDefault();
});

document.addEventListener("htmx:beforeSwap", (event) => {
  // A refused action answers 4xx with its reason and HX-Retarget (the flash area):
  // show that reason instead of htmx's default of dropping error answers.
  const xhr = event.detail.xhr;
  if (xhr.status >= 400 && xhr.status < 500 && xhr.getResponseHeader("HX-Retarget")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
