// Tessera's one script: small touches on pages that work without it.
// - A button with data-copy="<input id>" copies that field's value to the clipboard.
// - A form with data-confirm="<question>" asks before it is sent.
'use strict';
document.addEventListener('click', async (event) => {
  const button = event.target.closest('button[data-copy]');
  if (!button) return;
  event.preventDefault();
  const field = document.getElementById(button.dataset.copy);
  if (!field) return;
  try {
    await navigator.clipboard.writeText(field.value);
    button.textContent = 'Copied';
  } catch {
    field.select();
    button.textContent = 'Press Ctrl+C to copy';
  }
});
document.addEventListener('submit', (event) => {
  const form = event.target.closest('form[data-confirm]');
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});
document.querySelectorAll('button[data-copy]').forEach((button) => { button.hidden = false; });
