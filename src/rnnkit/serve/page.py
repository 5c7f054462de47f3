"""The web page of ``rnnkit serve`` (GET /): acrostic poems in the browser, one self-contained HTML string
(inline CSS and script, no external assets; it calls the service's own /generate)."""

PAGE = """<!doctype html>
<html lang="zh">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>藏头诗 · Acrostic poems — rnnkit</title>
<style>
  :root { --ink: #2b2520; --paper: #f6f1e7; --card: #fffdf8; --seal: #b3261e; --muted: #8a7f72; --line: #e4dccd; }
  * { box-sizing: border-box; }
  body { margin: 0; background: var(--paper); color: var(--ink);
         font-family: "Noto Serif CJK SC", "Source Han Serif SC", "Songti SC", "SimSun", serif; }
  main { max-width: 860px; margin: 0 auto; padding: 28px 24px 40px; }
  header { display: flex; align-items: center; gap: 16px; margin-bottom: 18px; }
  .seal { width: 54px; height: 54px; border-radius: 8px; background: var(--seal); color: #fff; display: grid;
          place-items: center; font-size: 26px; letter-spacing: 0; box-shadow: 0 2px 6px rgba(120, 20, 10, .25); }
  h1 { margin: 0; font-size: 28px; font-weight: 600; letter-spacing: .06em; }
  h1 small { font-size: 15px; color: var(--muted); letter-spacing: 0; font-family: Georgia, serif; }
  .sub { margin: 2px 0 0; color: var(--muted); font-size: 14px; font-family: system-ui, sans-serif; }
  form { display: flex; flex-wrap: wrap; align-items: flex-end; gap: 14px; background: var(--card);
         border: 1px solid var(--line); border-radius: 12px; padding: 16px 18px; }
  label { display: flex; flex-direction: column; gap: 5px; font-size: 13px; color: var(--muted);
          font-family: system-ui, sans-serif; }
  input, select { font: inherit; font-size: 18px; color: var(--ink); padding: 7px 10px; border: 1px solid #cfc4b2;
                  border-radius: 8px; background: #fff; }
  input#acrostic { width: 190px; letter-spacing: .2em; font-family: inherit; }
  input#seed { width: 110px; font-family: system-ui, sans-serif; font-size: 16px; }
  select { font-family: system-ui, sans-serif; font-size: 16px; }
  button { font: inherit; font-size: 18px; padding: 8px 22px; border: 0; border-radius: 8px; background: var(--seal);
           color: #fff; cursor: pointer; letter-spacing: .1em; }
  button:disabled { opacity: .6; cursor: wait; }
  #error { min-height: 1.4em; margin: 12px 2px 0; color: var(--seal); font-family: system-ui, sans-serif;
           font-size: 14px; white-space: pre-wrap; }
  #poems { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); gap: 16px; margin-top: 8px; }
  pre.poem { margin: 0; padding: 18px 20px; background: var(--card); border: 1px solid var(--line);
             border-left: 4px solid var(--seal); border-radius: 10px; font-family: inherit; font-size: 22px;
             line-height: 1.75; letter-spacing: .12em; white-space: pre; }
  pre.poem b { color: var(--seal); font-weight: 700; }
  footer { margin-top: 22px; color: var(--muted); font-size: 12px; font-family: system-ui, sans-serif; }
  footer a { color: var(--seal); }
</style>
</head>
<body>
<main>
  <header>
    <div class="seal">诗</div>
    <div>
      <h1>藏头诗 <small>Acrostic poems</small></h1>
      <p class="sub">每行以你给的字开头 · each line starts with one of your characters</p>
    </div>
  </header>
  <form id="controls">
    <label>藏头字 Heads <input id="acrostic" value="春花秋月" maxlength="8" autocomplete="off"></label>
    <label>体裁 Form
      <select id="form"><option value="5">五言 5 characters</option>
        <option value="7" selected>七言 7 characters</option></select></label>
    <label>首数 Poems
      <select id="num"><option>1</option><option selected>2</option><option>3</option><option>4</option></select>
    </label>
    <label>种子 Seed <input id="seed" type="number" min="0" step="1" placeholder="random"></label>
    <button id="write" type="submit">写诗 Write</button>
  </form>
  <div id="error" role="alert"></div>
  <div id="poems" aria-live="polite"></div>
  <footer>rnnkit serve · POST /generate · the API: <a href="docs">docs</a></footer>
</main>
<script>
const $ = (id) => document.getElementById(id);

function message(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail))
    return detail.map((e) => (e.loc || []).filter((p) => p !== "body").join(".") + ": " + e.msg).join("\\n");
  return JSON.stringify(detail);
}

function show(texts) {
  const poems = $("poems");
  poems.replaceChildren();
  for (const text of texts) {
    const pre = document.createElement("pre");
    pre.className = "poem";
    text.split("\\n").forEach((line, i) => {
      if (i) pre.append("\\n");
      const head = document.createElement("b");
      head.textContent = line.slice(0, 1);
      pre.append(head, line.slice(1));
    });
    poems.append(pre);
  }
}

async function write(event) {
  event.preventDefault();
  const button = $("write");
  $("error").textContent = "";
  const body = { acrostic: $("acrostic").value.trim() || null, form: Number($("form").value),
                 num: Number($("num").value) };
  const seed = $("seed").value.trim();
  if (seed !== "") body.seed = Number(seed);
  button.disabled = true;
  try {
    const answer = await fetch("generate", { method: "POST", headers: { "Content-Type": "application/json" },
                                             body: JSON.stringify(body) });
    const data = await answer.json().catch(() => ({ detail: answer.statusText }));
    if (!answer.ok) {
      $("poems").replaceChildren();
      $("error").textContent = message(data.detail) || ("HTTP " + answer.status);
      return;
    }
    show(data.texts);
  } catch (error) {
    $("poems").replaceChildren();
    $("error").textContent = "The service did not answer: " + error;
  } finally {
    button.disabled = false;
  }
}

$("controls").addEventListener("submit", write);
</script>
</body>
</html>
"""
