/* Shared navigation of minju.com.kp: article ids are zero-padded, the language picks a path. */
var SITE = { root: "/", langs: { en: "en", ko: "ko" } };
function pad(n, width) { var s = String(n); while (s.length < width) s = "0" + s; return s; }
function goArticle(opts) {
  var lang = SITE.langs[opts.lang] || "ko";
  window.location.href = SITE.root + lang + "/article/" + pad(opts.id, 6) + ".html";
}
function moveMenu(sel) {
  var v = sel.options[sel.selectedIndex].value;
  if (v) { location.assign("/menu/" + v + ".html"); }
}
