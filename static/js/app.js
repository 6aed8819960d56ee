// Small behaviours that need script; every page also works without it.
document.addEventListener("htmx:confirm", (event) => {
  // Buttons with data-confirm ask before an htmx request (no inline script under the CSP).
  const message = event.detail.elt.getAttribute("data-confirm");
  if (message && !window.confirm(message)) event.preventDefault();
});
