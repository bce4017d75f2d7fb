// Sign-in and account forms post the ordinary way; while the server answers, the button says
// so and cannot be pressed twice (a second code would be refused as already used).
for (const form of document.querySelectorAll("form[data-busy]")) {
  form.addEventListener("submit", () => {
    const button = form.querySelector("button[type=submit]");
    if (!button) return;
    button.disabled = true;
    button.textContent = form.dataset.busy;
    form.setAttribute("aria-busy", "true");
  });
}
