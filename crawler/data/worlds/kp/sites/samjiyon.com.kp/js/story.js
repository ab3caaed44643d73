/* Samjiyon: a story's text is fetched as JSON by its number (story.html?no=N). */
(function () {
  var match = /[?&]no=(\d+)/.exec(location.search);
  if (!match) { return; }
  fetch("/data/story/" + match[1] + ".json").then(function (r) { return r.json(); })
    .then(function (story) {
      document.title = story.title + " - Samjiyon News";
      var article = document.getElementById("story");
      var h = document.createElement("h2");
      h.textContent = story.title;
      var p = document.createElement("p");
      p.textContent = story.body;
      article.appendChild(h);
      article.appendChild(p);
    });
})();
