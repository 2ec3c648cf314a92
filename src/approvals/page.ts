/**
 * @module approvals/page
 * The approver's web page on the admin listener, for browsers (`Accept: text/html`): `/approvals` lists the pending
 * requests the approver may decide, `/approvals/<id>` shows one (who asked, in which groups, what operation on which
 * resource, from where, under which rule and why, when, its state and the decisions so far) with Approve and
 * Reject-with-reason buttons, and Revoke for a live grant. Server-rendered, no framework: every value passes through
 * `escapeHtml`.
 *
 * Authentication is the approver API's own (an OIDC bearer token, identity/caller.ts): the page asks for the token
 * once, keeps it in the tab's sessionStorage, and a small inline script sends it as `Authorization: Bearer` when it
 * fetches the rendered body (`?part=main`) and when a button calls the JSON API (`POST /approvals/<id>/approve`).
 * No cookie is ever set, so a page on another site cannot make the browser act for the approver (no CSRF): a
 * cross-site form or fetch carries no Authorization header, and the admin listener grants no CORS. The shell the
 * browser navigates to carries no data, only the script; a strict Content-Security-Policy allows that one script
 * (by nonce) and nothing else, so escaped text can never become script.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../core/principal.ts';
import { APPROVAL_STATES, effectiveState, isLive, type ApprovalRequest, type ApprovalState } from './model.ts';
import { ApprovalError, type ApprovalService } from './service.ts';

const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text for HTML element content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** Whether a GET asks for the page rather than JSON: browsers put text/html in Accept; the CLI and scripts do not. */
export function wantsPage(req: IncomingMessage): boolean {
  return req.method === 'GET' && /\btext\/html\b/.test(req.headers.accept ?? '');
}

const iso = (ms: number) => new Date(ms).toISOString();
const time = (ms: number) => `<time datetime="${iso(ms)}">${escapeHtml(iso(ms).replace('T', ' ').replace(/\.\d+Z$/, ' UTC'))}</time>`;

function row(label: string, valueHtml: string, name: string): string {
  return `<dt>${escapeHtml(label)}</dt><dd data-field="${name}">${valueHtml}</dd>`;
}

/** One request, as the approver decides it. */
export function renderApproval(request: ApprovalRequest, now: number): string {
  const state = effectiveState(request, now);
  const resource = Object.entries(request.scope.resource).map(([k, v]) => `${escapeHtml(k)} <code>${escapeHtml(v)}</code>`).join(', ') || '—';
  const context = Object.entries(request.context).map(([k, v]) => `${escapeHtml(k)}: <code>${escapeHtml(v)}</code>`).join('<br>') || '—';
  const approvals = request.decisions.filter((d) => d.verdict === 'approve').length;
  const decisions = request.decisions.length === 0 ? 'none yet' : `<ol>${request.decisions.map((d) =>
    `<li><strong>${escapeHtml(d.verdict === 'approve' ? 'approved' : 'rejected')}</strong> by ${escapeHtml(d.approver.subject)} at ${time(d.at)}${d.reason === undefined ? '' : `: ${escapeHtml(d.reason)}`}</li>`).join('')}</ol>`;
  const grant = request.grant;
  const grantHtml = grant === undefined ? '' : row('Grant', grant.revokedAt !== undefined
    ? `revoked by ${escapeHtml(grant.revokedBy?.subject ?? '?')} at ${time(grant.revokedAt)}: ${escapeHtml(grant.revokeReason ?? '')}`
    : grant.usedAt !== undefined ? `used at ${time(grant.usedAt)}`
      : `${grant.oneTime ? 'one request' : 'requests'} until ${time(grant.expiresAt)}${isLive(grant, now) ? '' : ' (expired)'}`, 'grant');
  const actions = state === 'pending'
    ? `<form data-action="approve"><label>Reason (optional) <input name="reason" maxlength="2000" autocomplete="off"></label> <button type="submit">Approve</button></form>
<form data-action="reject"><label>Reason <input name="reason" maxlength="2000" required autocomplete="off"></label> <button type="submit">Reject</button></form>`
    : grant !== undefined && isLive(grant, now)
      ? `<form data-action="revoke"><label>Reason <input name="reason" maxlength="2000" required autocomplete="off"></label> <button type="submit">Revoke grant</button></form>`
      : '';
  return `<section class="approval" data-id="${escapeHtml(request.id)}" data-state="${escapeHtml(state)}">
<h1>${escapeHtml(request.summary)}</h1>
<dl>
${row('State', `<strong class="state state-${escapeHtml(state)}">${escapeHtml(state)}</strong>`, 'state')}
${row('Requested by', `${escapeHtml(request.requester.subject)} <small>(${escapeHtml(request.requester.issuer)})</small>`, 'requester')}
${row('Their groups', escapeHtml(request.requester.groups.join(', ') || '—'), 'groups')}
${row('Operation', `${escapeHtml(request.scope.path)} <code>${escapeHtml(request.scope.operation)}</code>`, 'operation')}
${row('Resource', resource, 'resource')}
${row('Where from', context, 'context')}
${row('Rule', `<code>${escapeHtml(request.rule)}</code>`, 'rule')}
${row('Why', escapeHtml(request.reason), 'reason')}
${row('Requested', time(request.createdAt), 'created')}
${row(state === 'pending' ? 'Expires' : 'Was due by', time(request.expiresAt), 'expires')}
${row('Approvers', `${approvals} of ${escapeHtml(request.min)} from ${escapeHtml(request.approverGroups.join(', '))}`, 'approvers')}
${row('Decisions', decisions, 'decisions')}
${grantHtml}
</dl>
${actions}
<p class="result" role="alert" aria-live="assertive"></p>
</section>`;
}

const LIST_STATES = [...APPROVAL_STATES, 'all'] as const;

/** The requests `viewer` may see in one state, newest first, each linking to its page. */
export function renderList(requests: readonly ApprovalRequest[], state: ApprovalState | 'all', now: number): string {
  const tabs = LIST_STATES.map((s) => s === state ? `<strong>${s}</strong>` : `<a href="/approvals?state=${s}">${s}</a>`).join(' · ');
  const rows = requests.map((r) => `<tr data-id="${escapeHtml(r.id)}">
<td><a href="/approvals/${encodeURIComponent(r.id)}">${escapeHtml(r.summary)}</a></td><td>${escapeHtml(r.requester.subject)}</td>
<td><code>${escapeHtml(r.rule)}</code></td><td>${escapeHtml(r.reason)}</td><td>${time(r.createdAt)}</td><td>${escapeHtml(effectiveState(r, now))}</td></tr>`).join('\n');
  return `<section class="list"><h1>Approvals</h1><nav>${tabs}</nav>
${requests.length === 0 ? `<p class="empty">No ${state === 'all' ? '' : `${escapeHtml(state)} `}requests you may see.</p>` : `<table><thead><tr><th>Request</th><th>Who</th><th>Rule</th><th>Why</th><th>Requested</th><th>State</th></tr></thead>
<tbody>
${rows}
</tbody></table>`}
</section>`;
}

const STYLE = `body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d232a}header{display:flex;gap:1em;align-items:center;padding:.6em 1.2em;background:#1d232a;color:#fff}
header a{color:#fff;font-weight:600;text-decoration:none}#who{margin-left:auto;opacity:.8}main,#login,#status{margin:1.2em}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.35em 1.2em}dt{font-weight:600;color:#555}dd{margin:0}form{margin:.6em 0}
table{border-collapse:collapse}td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
.state-pending{color:#9a6700}.state-approved{color:#1a7f37}.state-rejected,.state-expired{color:#cf222e}.result:not(:empty),.error{padding:.5em;background:#fff3f3;border-left:4px solid #cf222e}
.result.ok{background:#f0fff4;border-color:#1a7f37}textarea{width:min(60em,100%);font-family:monospace}`;

/** The inline script: token in sessionStorage, the body fetched with it, the buttons calling the JSON API. */
const SCRIPT = `(() => {
  'use strict';
  const KEY = 'tollgate.approvals.token';
  const $ = (id) => document.getElementById(id);
  const main = $('main'), login = $('login'), status = $('status'), signout = $('signout');
  const token = () => sessionStorage.getItem(KEY);
  const auth = () => ({ authorization: 'Bearer ' + token() });
  async function load(note) {
    if (!token()) { login.hidden = false; signout.hidden = true; main.textContent = ''; $('who').textContent = ''; status.textContent = note || ''; return; }
    login.hidden = true; signout.hidden = false;
    const url = new URL(location.href);
    url.searchParams.set('part', 'main');
    const res = await fetch(url, { headers: { accept: 'text/html', ...auth() }, cache: 'no-store' });
    if (res.status === 401) {
      sessionStorage.removeItem(KEY);
      login.hidden = false; signout.hidden = true; main.textContent = '';
      status.textContent = 'Sign-in failed: ' + (res.headers.get('x-tollgate-message') || res.statusText);
      return;
    }
    $('who').textContent = res.headers.get('x-tollgate-viewer') ? 'signed in as ' + res.headers.get('x-tollgate-viewer') : '';
    // Rendered by tollgate with every value escaped; the page's policy runs no script in it.
    main.innerHTML = await res.text();
    // The note last: once it shows, so does the state it reports.
    status.textContent = note || '';
  }
  login.addEventListener('submit', (e) => {
    e.preventDefault();
    const value = $('token').value.trim().replace(/^Bearer\\s+/i, '');
    $('token').value = '';
    if (value) sessionStorage.setItem(KEY, value);
    load();
  });
  signout.addEventListener('click', () => { sessionStorage.removeItem(KEY); load('Signed out.'); });
  main.addEventListener('submit', async (e) => {
    const form = e.target.closest('form[data-action]');
    const section = e.target.closest('section[data-id]');
    if (!form || !section) return;
    e.preventDefault();
    const result = section.querySelector('.result');
    const action = form.dataset.action;
    const reason = form.elements.reason ? form.elements.reason.value.trim() : '';
    for (const b of main.querySelectorAll('button')) b.disabled = true;
    result.className = 'result'; result.textContent = '';
    let res, body = {};
    try {
      res = await fetch('/approvals/' + encodeURIComponent(section.dataset.id) + '/' + action, {
        method: 'POST', headers: { 'content-type': 'application/json', ...auth() }, body: JSON.stringify(reason ? { reason } : {}),
      });
      body = await res.json().catch(() => ({}));
    } catch (err) {
      body = { message: 'tollgate did not answer: ' + err.message };
    }
    if (res && res.ok) {
      await load(action === 'approve' ? 'Approval recorded: ' + body.state + '.' : action === 'reject' ? 'Rejected.' : 'Grant revoked.');
    } else {
      result.textContent = (res ? res.status + ' ' : '') + (body.error ? body.error + ': ' : '') + (body.message || 'refused');
      for (const b of main.querySelectorAll('button')) b.disabled = false;
    }
  });
  load();
})();`;

function shell(nonce: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>tollgate approvals</title><style nonce="${nonce}">${STYLE}</style></head>
<body>
<header><a href="/approvals">tollgate approvals</a><span id="who"></span><button id="signout" type="button" hidden>Sign out</button></header>
<form id="login" hidden>
<p>Sign in with your bearer token (an OIDC token from your identity provider, the same one <code>tollgate approvals</code> takes).
It stays in this browser tab only, and is sent to tollgate only.</p>
<label>Token<br><textarea id="token" rows="4" autocomplete="off" spellcheck="false" required></textarea></label><br>
<button type="submit">Sign in</button>
</form>
<p id="status" role="status"></p>
<main id="main" aria-live="polite"></main>
<script nonce="${nonce}">${SCRIPT}</script>
<noscript>This page needs JavaScript; the JSON API at /approvals and the tollgate approvals CLI work without it.</noscript>
</body></html>
`;
}

export interface ApprovalsPageDeps {
  readonly service: () => ApprovalService | undefined;
  /** The caller of a request, by the approver API's rules; rejects when unauthenticated. */
  readonly caller: (req: IncomingMessage) => Promise<Principal>;
}

const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

function fragment(res: ServerResponse, status: number, html: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...PAGE_HEADERS, 'content-security-policy': "default-src 'none'; frame-ancestors 'none'", ...headers }).end(html);
}

/** Who the page shows as signed in (a header: the script writes it as text). */
const signedIn = (viewer: Principal) => ({ 'x-tollgate-viewer': viewer.subject.replace(/[^\x20-\x7e]/g, '?').slice(0, 200) });

/** Handles a GET under /approvals that `wantsPage`. */
export function createApprovalsPage(deps: ApprovalsPageDeps): (req: IncomingMessage, res: ServerResponse, path: readonly string[]) => Promise<void> {
  return async (req, res, parts) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    if (url.searchParams.get('part') !== 'main') {
      const nonce = randomBytes(16).toString('base64');
      res.writeHead(200, {
        ...PAGE_HEADERS,
        'content-security-policy': `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'`,
      }).end(shell(nonce));
      return;
    }
    const service = deps.service();
    if (service === undefined) {
      fragment(res, 503, '<p class="error">Approvals are not in use (no rule has <code>effect: approve</code>) or their store is not open yet.</p>');
      return;
    }
    let viewer: Principal;
    try {
      viewer = await deps.caller(req);
    } catch (error) {
      const message = (error as Error).message;
      // The reason also as a header, so the script can show it next to the sign-in form (a header holds no line break).
      fragment(res, 401, `<p class="error">${escapeHtml(message)}</p>`, { 'x-tollgate-message': message.replace(/[^\x20-\x7e]/g, '?').slice(0, 300) });
      return;
    }
    try {
      if (parts.length === 0) {
        const asked = url.searchParams.get('state') ?? 'pending';
        const state = (LIST_STATES as readonly string[]).includes(asked) ? asked as ApprovalState | 'all' : 'pending';
        const list = await service.list(viewer, state === 'all' ? undefined : state, 200);
        fragment(res, 200, renderList(list, state, service.now()), signedIn(viewer));
      } else if (parts.length === 1) {
        fragment(res, 200, renderApproval(await service.get(decodeURIComponent(parts[0]!), viewer), service.now()), signedIn(viewer));
      } else {
        fragment(res, 404, '<p class="error">No such page.</p>');
      }
    } catch (error) {
      if (error instanceof ApprovalError) fragment(res, error.httpStatus, `<p class="error">${escapeHtml(error.message)}</p>`);
      else throw error;
    }
  };
}
