/// The dashboard's one HTML page: a header with the navigation and the signed-in user, a
/// banner for messages, the token box, and the element each page renders into.
enum DashboardPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Gantry</title>
<link rel="stylesheet" href="/ui/app.css">
</head>
<body>
<header class="top">
  <a class="brand" href="#/queues">Gantry</a>
  <nav>
    <a href="#/queues" data-nav="queues">Queues</a>
    <a href="#/workloads" data-nav="workloads">Workloads</a>
    <a href="#/nodes" data-nav="nodes">Nodes</a>
  </nav>
  <span class="spacer"></span>
  <span id="live" class="live" title="Live updates every 2 seconds; paused while the tab is hidden"></span>
  <span id="who" class="who"></span>
  <button id="token-button" type="button" class="small">Token</button>
</header>
<section id="login" class="login" hidden>
  <form id="login-form">
    <h2>Access token</h2>
    <p id="login-reason" class="muted">Paste the bearer token from the daemon's tokens file. It is kept in this browser's local storage.</p>
    <label>Token <input id="login-token" type="password" autocomplete="off" spellcheck="false" size="48"></label>
    <div class="row">
      <button type="submit">Use this token</button>
      <button id="login-none" type="button" class="secondary" title="For a daemon started without a tokens file (loopback only)">No token</button>
      <button id="login-cancel" type="button" class="secondary">Cancel</button>
    </div>
  </form>
</section>
<div id="banner" class="banner" role="status" hidden></div>
<main id="main"><p class="muted">Loading…</p></main>
<noscript><p class="message error">The Gantry dashboard needs JavaScript.</p></noscript>
<script src="/ui/app.js"></script>
</body>
</html>
"""#
}
