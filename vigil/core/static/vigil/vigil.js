// Small progressive enhancements; pages work without it.
document.addEventListener("DOMContentLoaded", () => {
  // Submit filter forms when a select changes (htmx handles the request when present).
  document.querySelectorAll("form[data-autosubmit] select").forEach((el) => {
    el.addEventListener("change", () => {
      const form = el.form;
      if (window.htmx && form.hasAttribute("hx-get")) return;
      form.requestSubmit();
    });
  });
  // Confirm dangerous actions.
  document.querySelectorAll("[data-confirm]").forEach((el) => {
    el.addEventListener("click", (ev) => {
      if (!window.confirm(el.dataset.confirm)) ev.preventDefault();
    });
  });
});
