/* Arirang: the list on the home page, an article on article.html?id=N, both from JSON. */
(function () {
  var app = document.getElementById("app");
  var id = new URLSearchParams(location.search).get("id");
  function esc(s) { return String(s).replace(/[&<>]/g, function (c) { return {"&": "&amp;", "<": "&lt;", ">": "&gt;"}[c]; }); }
  if (id) {
    fetch("/api/article/" + encodeURIComponent(id) + ".json").then(function (r) { return r.json(); }).then(function (a) {
      document.title = a.title;
      app.innerHTML = "<h1>" + esc(a.title) + "</h1><p>" + esc(a.body) + "</p><p><a href='/'>Arirang</a></p>";
    });
  } else {
    fetch("/api/articles.json").then(function (r) { return r.json(); }).then(function (list) {
      app.innerHTML = "<h1>Arirang</h1><ul>" + list.map(function (a) {
        return "<li><a href='/article.html?id=" + a.id + "'>" + esc(a.title) + "</a></li>";
      }).join("") + "</ul>";
    });
  }
})();
