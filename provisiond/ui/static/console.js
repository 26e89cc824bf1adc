// provisiond console: conveniences only; every page works without this script.
// - a form with data-confirm asks before it is sent (the text names what it acts on);
// - a checkbox with data-select-all ticks every checkbox of the same form's name.
document.addEventListener("submit", function (event) {
  var form = event.target.closest("form[data-confirm]") || event.submitter && event.submitter.closest("[data-confirm]");
  var text = form && form.getAttribute("data-confirm");
  if (text && !window.confirm(text)) { event.preventDefault(); }
});
document.addEventListener("change", function (event) {
  var box = event.target;
  if (!box.matches("input[data-select-all]")) { return; }
  var name = box.getAttribute("data-select-all");
  document.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(function (each) {
    each.checked = box.checked;
  });
});
