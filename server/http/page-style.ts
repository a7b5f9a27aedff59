// What the service's own pages (/ and /live) share: one small stylesheet (a
// system font, cards, styled controls, light and dark, a phone's width), the
// icon, and their Content-Security-Policy. No other origin, nothing to fetch
// but the page's own files.

/** The icon: a blue tile with three bars (counts), as SVG; served at /favicon.ico, which every browser asks for. */
export const faviconSvg =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#1d4ed8"/><path d="M9.5 23v-7M16 23V9m6.5 14v-10" stroke="#fff" stroke-width="4" stroke-linecap="round"/></svg>';

/** The <head> lines every page has: the phone's width, light and dark, the icon. */
export const pageHead = `<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<link rel="icon" href="/favicon.ico" type="image/svg+xml">`;

/** The page's own resources only: no inline script, no other origin; `script` when it runs the page's script. */
export function pageSecurityHeaders({ script }: { script: boolean }): Record<string, string> {
  const scripts = script ? "script-src 'self'; connect-src 'self'; " : "";
  return {
    "content-security-policy": `default-src 'none'; ${scripts}style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    "x-content-type-options": "nosniff",
  };
}

/** Text for HTML, attribute values included. */
export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string,
  );
}

export const pageStyle = `
:root {
  color-scheme: light dark;
  --bg: #f4f5f7; --card: #fff; --field: #fff; --text: #1b1f24; --muted: #5b6472; --border: #d7dbe1;
  --accent: #1d4ed8; --accent-hover: #1e40af; --on-accent: #fff;
  --ok: #13612e; --ok-bg: #e6f5eb; --error: #a51c1c; --error-bg: #fdecec; --pending: #a16207; --live: #16a34a;
  --code-bg: #eef0f3;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #101317; --card: #191e25; --field: #11151a; --text: #e7eaef; --muted: #9aa4b2; --border: #2d343e;
    --accent: #5b8cff; --accent-hover: #84a8ff; --on-accent: #0b1020;
    --ok: #86e3a5; --ok-bg: #10301c; --error: #ffa3a3; --error-bg: #3b1717; --pending: #f0b429; --live: #4ade80;
    --code-bg: #0c0f13;
  }
}
*, *::before, *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body {
  margin: 0; background: var(--bg); color: var(--text);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
a { color: var(--accent); }
a:hover { color: var(--accent-hover); }
.bar {
  display: flex; align-items: center; justify-content: space-between; gap: 1rem; flex-wrap: wrap;
  padding: .75rem clamp(1rem, 4vw, 2rem); background: var(--card); border-bottom: 1px solid var(--border);
}
.brand { display: inline-flex; align-items: center; gap: .5rem; font-weight: 650; color: inherit; text-decoration: none; }
.brand img { width: 1.5rem; height: 1.5rem; }
.bar nav { display: flex; gap: 1.25rem; font-size: .95rem; }
.bar nav a { text-decoration: none; font-weight: 500; }
.bar nav a:hover { text-decoration: underline; }
main { max-width: 60rem; margin: 0 auto; padding: clamp(1rem, 4vw, 2rem); }
h1 { font-size: clamp(1.6rem, 5vw, 2.1rem); line-height: 1.2; margin: 0; letter-spacing: -.01em; }
.lede { color: var(--muted); margin: .5rem 0 0; }
.card {
  background: var(--card); border: 1px solid var(--border); border-radius: 12px;
  padding: clamp(1rem, 3vw, 1.4rem); box-shadow: 0 1px 2px rgb(16 24 40 / 6%); min-width: 0;
}
.card h2 { font-size: 1.05rem; margin: 0 0 .75rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 17rem), 1fr)); gap: 1rem; margin: 1.5rem 0 1rem; }
label { display: block; font-weight: 600; font-size: .92rem; }
.hint { display: block; color: var(--muted); font-size: .85rem; }
input {
  font: inherit; color: inherit; background: var(--field); width: 100%; min-width: 0; height: 2.75rem;
  padding: .5rem .7rem; border: 1px solid var(--border); border-radius: 8px;
}
input:hover { border-color: var(--muted); }
input:user-invalid { border-color: var(--error); }
button {
  font: inherit; font-weight: 600; height: 2.75rem; padding: 0 1.2rem; border: 0; border-radius: 8px;
  background: var(--accent); color: var(--on-accent); cursor: pointer; white-space: nowrap;
}
button:hover { background: var(--accent-hover); }
button:disabled { opacity: .6; cursor: progress; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
code, pre { font: .875rem/1.5 ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; }
pre { background: var(--code-bg); border: 1px solid var(--border); border-radius: 8px; padding: .75rem 1rem; overflow-x: auto; margin: .5rem 0 1rem; }
`;
