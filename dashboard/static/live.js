// Live updates for officers: the server pushes a small event when complaints or notifications change;
// the page shows a "there are updates" banner instead of reloading under the officer's cursor.
(function () {
  if (!window.EventSource) { return; }
  var source = new EventSource("/dashboard/events");
  var first = true;
  source.addEventListener("change", function (event) {
    var data = JSON.parse(event.data);
    var bell = document.querySelector(".bell");
    if (bell) {
      var badge = document.getElementById("unread");
      if (data.unread > 0) {
        if (!badge) { badge = document.createElement("b"); badge.id = "unread"; bell.appendChild(document.createTextNode(" ")); bell.appendChild(badge); }
        badge.textContent = String(data.unread);
      } else if (badge) { badge.remove(); }
    }
    if (first) { first = false; return; }
    var banner = document.getElementById("live");
    if (banner) { banner.className = "ok show"; }
  });
})();
