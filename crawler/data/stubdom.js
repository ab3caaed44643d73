// A stub DOM for running a page's own scripts in the census's JavaScript sandbox
// (crawler/crawl/scripts.py).  It has no network and no real document: it has just enough of
// window, document, location, forms and elements for navigation code to run, and it records
// every place the code tries to go (location.href = ..., location.assign/replace, window.open,
// form submit(), history.pushState, a.href on built elements) and every piece of HTML it
// writes (document.write, innerHTML), for the crawler to follow.
//
// Python defines __PAGE (the page URL) and __ELEMENTS (element descriptions) before this file
// runs, then calls __census.run(index, code, option) once per handler.
(function () {
  "use strict";
  var G = globalThis;
  var MAX_NAV = 2000, MAX_WRITES = 500, MAX_DEFERRED = 200;
  var NAV = [], WRITES = [], DEFERRED = [];

  function go(url) {
    if (NAV.length >= MAX_NAV) throw new Error("census: navigation budget spent");
    if (url !== undefined && url !== null) NAV.push(String(url));
  }
  function write() {
    if (WRITES.length >= MAX_WRITES) throw new Error("census: write budget spent");
    WRITES.push(Array.prototype.join.call(arguments, ""));
  }
  function defer(fn) {
    if (DEFERRED.length < MAX_DEFERRED) {
      if (typeof fn === "function") DEFERRED.push(fn);
      else if (typeof fn === "string") DEFERRED.push(new Function(fn));
    }
    return DEFERRED.length;
  }

  // Anything the stub does not model: every property is another hole, every call returns one,
  // and setting href/src/action or innerHTML on it is recorded.
  function hole() {
    var target = function () {};
    return new Proxy(target, {
      get: function (t, key) {
        if (key === Symbol.toPrimitive) return function () { return ""; };
        if (key === "toString" || key === "valueOf") return function () { return ""; };
        if (key === "length") return 0;
        if (key === "then") return undefined;  // not a promise
        if (typeof key === "symbol") return undefined;
        return hole();
      },
      set: function (t, key, value) { record(key, value); return true; },
      apply: function () { return hole(); },
      construct: function () { return hole(); },
    });
  }
  function record(key, value) {
    if (key === "innerHTML" || key === "outerHTML") write(value);
    else if (key === "href" || key === "src" || key === "action") go(value);
  }
  // A plain object whose missing properties are holes, so unknown code runs on.
  function lenient(obj) {
    return new Proxy(obj, {
      get: function (t, key) {
        if (key in t || typeof key === "symbol") return t[key];
        return hole();
      },
      set: function (t, key, value) {
        if (key === "innerHTML" || key === "outerHTML") write(value);
        t[key] = value;
        return true;
      },
    });
  }

  var page = __PAGE;  // href, protocol, host, hostname, port, pathname, search, hash, origin
  var location = {
    get href() { return page.href; }, set href(v) { go(v); },
    assign: go, replace: go, reload: function () {},
    toString: function () { return page.href; },
    protocol: page.protocol, host: page.host, hostname: page.hostname, port: page.port,
    pathname: page.pathname, search: page.search, hash: page.hash, origin: page.origin,
  };

  // Elements of the page that scripts can reach: by id, name, form, and as `this` of handlers.
  var ELEMENTS = [], BY_ID = {}, BY_NAME = {}, FORMS = [];
  function makeElement(d) {
    var el = {
      tagName: d.tag.toUpperCase(), nodeName: d.tag.toUpperCase(), id: d.attrs.id || "",
      name: d.attrs.name || "", className: d.attrs["class"] || "",
      textContent: d.text, innerText: d.text, title: d.attrs.title || "",
      value: d.attrs.value !== undefined ? d.attrs.value : "",
      href: d.href || "", style: {}, dataset: {}, attributes: [],
      getAttribute: function (k) { return k in d.attrs ? d.attrs[k] : null; },
      setAttribute: function (k, v) { d.attrs[k] = String(v); record(k, v); },
      hasAttribute: function (k) { return k in d.attrs; },
      addEventListener: function (type, fn) { defer(fn); },
      appendChild: function (c) { return c; }, removeChild: function (c) { return c; },
      focus: function () {}, blur: function () {}, click: function () {},
    };
    for (var k in d.attrs) {
      if (k.indexOf("data-") === 0) {
        el.dataset[k.slice(5).replace(/-([a-z])/g, function (m, c) { return c.toUpperCase(); })] = d.attrs[k];
      }
    }
    if (d.options) {
      el.options = d.options.map(function (o) { return { value: o.value, text: o.text, selected: false }; });
      el.selectedIndex = 0;
      el.value = el.options.length ? el.options[0].value : "";
    }
    return lenient(el);
  }
  function makeForm(d) {
    var form = makeElement(d);
    form.action = d.action; form.method = (d.attrs.method || "get").toLowerCase();
    form.elements = {};
    form.submit = function () {
      if (form.method !== "get") { go(form.action); return; }
      var q = [];
      for (var n in form.elements) {
        var f = form.elements[n];
        q.push(encodeURIComponent(n) + "=" + encodeURIComponent(f.value === undefined ? "" : f.value));
      }
      go(String(form.action).split("?")[0].split("#")[0] + "?" + q.join("&"));
    };
    form.reset = function () {};
    return form;
  }
  __ELEMENTS.forEach(function (d, i) {
    var el = d.tag === "form" ? makeForm(d) : makeElement(d);
    ELEMENTS.push(el);
    if (d.tag === "form") FORMS.push(el);
    if (d.attrs.id) BY_ID[d.attrs.id] = el;
    if (d.attrs.name) (BY_NAME[d.attrs.name] = BY_NAME[d.attrs.name] || []).push(el);
  });
  __ELEMENTS.forEach(function (d, i) {
    if (d.form >= 0) {
      var form = ELEMENTS[d.form], el = ELEMENTS[i];
      el.form = form;
      if (d.attrs.name) { form.elements[d.attrs.name] = el; form[d.attrs.name] = el; }
    }
  });
  FORMS.forEach(function (f) { if (f.name) FORMS[f.name] = f; if (f.id) FORMS[f.id] = f; });

  var listeners = { addEventListener: function (type, fn) { defer(fn); },
                    removeEventListener: function () {}, attachEvent: function (t, fn) { defer(fn); } };
  var document = lenient({
    get location() { return location; }, set location(v) { go(v); },
    URL: page.href, documentURI: page.href, referrer: "", cookie: "", title: "",
    domain: page.hostname, readyState: "complete", characterSet: "UTF-8",
    write: write, writeln: write, open: function () {}, close: function () {},
    forms: FORMS, links: [], images: [], anchors: [],
    getElementById: function (id) { return BY_ID[id] || null; },
    getElementsByName: function (n) { return BY_NAME[n] || []; },
    getElementsByTagName: function (t) {
      t = String(t).toUpperCase();
      return ELEMENTS.filter(function (e) { return e.tagName === t; });
    },
    getElementsByClassName: function () { return []; },
    querySelector: function (s) {
      s = String(s);
      if (s.charAt(0) === "#") return BY_ID[s.slice(1)] || null;
      return null;
    },
    querySelectorAll: function () { return []; },
    createElement: function (t) { return makeElement({ tag: String(t).toLowerCase(), attrs: {}, text: "" }); },
    createTextNode: function () { return hole(); },
    addEventListener: listeners.addEventListener, attachEvent: listeners.attachEvent,
    removeEventListener: listeners.removeEventListener,
  });
  for (var name in BY_NAME) {
    BY_NAME[name].forEach(function (el) { if (el.tagName === "FORM" && !(name in document)) document[name] = el; });
  }
  document.body = hole(); document.head = hole(); document.documentElement = hole();

  Object.defineProperty(G, "location", { get: function () { return location; }, set: go });
  Object.defineProperty(G, "document", { value: document });
  G.window = G; G.self = G; G.top = G; G.parent = G; G.frames = G; G.opener = null;
  G.open = function (url) { if (url) go(url); return hole(); };
  G.navigate = go;
  G.history = { length: 1, back: function () {}, forward: function () {}, go: function () {},
                pushState: function (s, t, u) { if (u) go(u); },
                replaceState: function (s, t, u) { if (u) go(u); } };
  G.navigator = { userAgent: "Mozilla/5.0 (census)", language: "ko", languages: ["ko"],
                  platform: "Linux", cookieEnabled: false, onLine: true };
  G.screen = { width: 1280, height: 800, availWidth: 1280, availHeight: 800 };
  G.setTimeout = defer; G.setInterval = defer;
  G.clearTimeout = function () {}; G.clearInterval = function () {};
  G.requestAnimationFrame = defer;
  G.alert = function () {}; G.confirm = function () { return true; };
  G.prompt = function () { return ""; }; G.print = function () {};
  G.addEventListener = listeners.addEventListener; G.attachEvent = listeners.attachEvent;
  G.removeEventListener = listeners.removeEventListener;
  G.Image = function () { return hole(); };
  G.XMLHttpRequest = function () { return hole(); };
  G.fetch = function () { return hole(); };
  G.localStorage = G.sessionStorage = { getItem: function () { return null; },
                                        setItem: function () {}, removeItem: function () {} };
  G.console = { log: function () {}, warn: function () {}, error: function () {}, info: function () {} };
  G.jQuery = G.$ = function (arg) { if (typeof arg === "function") defer(arg); return hole(); };

  function event(el) {
    return lenient({ type: "click", target: el, currentTarget: el, srcElement: el,
                     preventDefault: function () {}, stopPropagation: function () {},
                     returnValue: true });
  }

  G.__census = {
    nav: NAV, writes: WRITES,
    // One handler of element `index` (or of none, -1), with the select option `option` chosen.
    run: function (index, code, option) {
      var el = index >= 0 ? ELEMENTS[index] : G;
      if (option >= 0 && el.options) {
        el.selectedIndex = option; el.value = el.options[option].value;
        el.options[option].selected = true;
      }
      new Function("event", code).call(el, event(el));
    },
    // Timers, onload and listeners the scripts registered, each once.
    deferred: function () {
      if (typeof G.onload === "function") defer(G.onload);
      if (typeof document.onreadystatechange === "function") defer(document.onreadystatechange);
      for (var i = 0; i < DEFERRED.length; i++) {
        try { DEFERRED[i].call(G, event(G)); } catch (e) { if (String(e).indexOf("census:") >= 0) throw e; }
      }
    },
    take: function () {
      var out = JSON.stringify({ nav: NAV.splice(0), writes: WRITES.splice(0) });
      return out;
    },
  };
})();
