/**
 * @module approvals/cli
 * `tollgate approvals list|show|approve|reject|revoke`: the approver API (./api.ts) from a terminal. The approver's
 * token comes from `--token` or `TOLLGATE_TOKEN` (`tollgate token` mints one from the quickstart's dev issuer); the
 * admin listener from `--admin`, `TOLLGATE_ADMIN_URL`, the running quickstart's state file, or the quickstart's
 * fixed address.
 */
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import path from 'node:path';

export const APPROVALS_USAGE = `  tollgate approvals list [--state pending|approved|rejected|expired|all] [--json]
  tollgate approvals show ID [--json]
  tollgate approvals approve ID [--reason TEXT]
  tollgate approvals reject ID --reason TEXT
  tollgate approvals revoke ID --reason TEXT
                                        decide approval requests; options --admin URL (default: the
                                        quickstart's admin listener) and --token TOKEN (or TOLLGATE_TOKEN)
`;

/** The quickstart's admin listener, as examples/quickstart.yaml fixes it. */
export const QUICKSTART_ADMIN_URL = 'http://127.0.0.1:19901';

export class ApprovalsUsageError extends Error {}

export interface ApprovalsIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** Where `.tollgate/quickstart.json` is looked for. */
  readonly cwd: string;
}

function defaultAdminUrl(io: ApprovalsIo): string {
  const fromEnv = io.env['TOLLGATE_ADMIN_URL'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  try {
    const state = JSON.parse(readFileSync(path.join(io.cwd, '.tollgate', 'quickstart.json'), 'utf8')) as { tollgate?: { admin?: string } };
    if (typeof state.tollgate?.admin === 'string') return state.tollgate.admin;
  } catch { /* no quickstart state here: its fixed address */ }
  return QUICKSTART_ADMIN_URL;
}

interface Shown {
  id: string; state: string; url: string; rule: string; mode: string; request: string; reason: string;
  requester: { subject: string; groups: string[] }; approvers: { groups: string[]; min: number };
  context: Record<string, string | number>; createdAt: string; expiresAt: string; decidedAt?: string;
  decisions: Array<{ approver: string; verdict: string; reason?: string; at: string }>;
  grant?: { id: string; expiresAt: string; oneTime: boolean; usedAt?: string; revokedAt?: string; revokedBy?: string; revokeReason?: string };
}

function table(rows: readonly Shown[]): string {
  if (rows.length === 0) return 'no approval requests\n';
  const lines = [['ID', 'STATE', 'RULE', 'REQUESTER', 'REQUEST', 'EXPIRES'], ...rows.map((r) => [r.id, r.state, r.rule, r.requester.subject, r.request, r.expiresAt])];
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return lines.map((l) => l.map((cell, i) => (i === l.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

function details(r: Shown): string {
  const lines = [
    `${r.id}  ${r.state}`,
    `  requested by ${r.requester.subject} (${r.requester.groups.join(', ') || 'no groups'}) at ${r.createdAt}`,
    `  request      ${r.request}`,
    ...Object.entries(r.context).map(([k, v]) => `    ${k}: ${v}`),
    `  rule         ${r.rule} (${r.mode}): ${r.reason}`,
    `  approvers    ${r.approvers.min} of ${r.approvers.groups.join(', ')}`,
    `  expires      ${r.expiresAt}`,
    ...r.decisions.map((d) => `  ${d.verdict === 'approve' ? 'approved' : 'rejected'} by ${d.approver} at ${d.at}${d.reason === undefined ? '' : `: ${d.reason}`}`),
  ];
  if (r.grant !== undefined) {
    const g = r.grant;
    lines.push(`  grant        ${g.id} until ${g.expiresAt}${g.oneTime ? ' (one request)' : ''}${g.usedAt !== undefined ? `, used ${g.usedAt}` : ''}${g.revokedAt !== undefined ? `, revoked ${g.revokedAt} by ${g.revokedBy ?? '?'}: ${g.revokeReason ?? ''}` : ''}`);
  }
  lines.push(`  ${r.url}`);
  return lines.join('\n') + '\n';
}

/** Runs `tollgate approvals …`; resolves to the exit code (0 done, 1 refused or unreachable). Throws ApprovalsUsageError. */
export async function approvalsCommand(args: readonly string[], io: ApprovalsIo): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: [...rest], strict: true, allowPositionals: true,
    options: {
      admin: { type: 'string' }, token: { type: 'string' }, reason: { type: 'string' },
      state: { type: 'string' }, json: { type: 'boolean', default: false },
    },
  });
  const admin = (values.admin ?? defaultAdminUrl(io)).replace(/\/+$/, '');
  const token = values.token ?? io.env['TOLLGATE_TOKEN'];
  if (sub === undefined) throw new ApprovalsUsageError('expected a subcommand: list, show, approve, reject or revoke');
  if (!['list', 'show', 'approve', 'reject', 'revoke'].includes(sub)) throw new ApprovalsUsageError(`unknown approvals subcommand "${sub}"`);
  if (token === undefined || token === '') throw new ApprovalsUsageError('expected the approver\'s token: --token TOKEN or TOLLGATE_TOKEN (e.g. `tollgate token --sub pat --groups platform-admins`)');
  const expected = sub === 'list' ? 0 : 1;
  if (positionals.length !== expected) throw new ApprovalsUsageError(sub === 'list' ? `list takes no arguments, got ${positionals.join(' ')}` : `${sub} expects one approval id, got ${positionals.length}`);
  if ((sub === 'reject' || sub === 'revoke') && (values.reason === undefined || values.reason.trim() === '')) throw new ApprovalsUsageError(`${sub} needs --reason TEXT (the requester is told it)`);
  if (values.state !== undefined && sub !== 'list') throw new ApprovalsUsageError('--state applies to list');

  const id = positionals[0];
  const target = sub === 'list'
    ? `${admin}/approvals?state=${encodeURIComponent(values.state ?? 'pending')}`
    : sub === 'show' ? `${admin}/approvals/${encodeURIComponent(id!)}` : `${admin}/approvals/${encodeURIComponent(id!)}/${sub}`;
  let res: Response;
  try {
    res = await fetch(target, {
      method: sub === 'list' || sub === 'show' ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${token}`, ...(sub !== 'list' && sub !== 'show' && { 'content-type': 'application/json' }) },
      ...(sub !== 'list' && sub !== 'show' && { body: JSON.stringify(values.reason === undefined ? {} : { reason: values.reason }) }),
    });
  } catch (error) {
    io.err(`tollgate approvals ${sub}: cannot reach tollgate's admin listener at ${admin} (is tollgate running? --admin URL): ${(error as Error).message}\n`);
    return 1;
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    io.err(`tollgate approvals ${sub}: ${admin} answered ${res.status} with something that is not JSON: ${text.slice(0, 200)}\n`);
    return 1;
  }
  if (!res.ok) {
    const e = body as { error?: string; message?: string };
    io.err(`tollgate approvals ${sub}: refused by ${admin} (${res.status} ${e.error ?? ''}): ${e.message ?? text}\n`);
    return 1;
  }
  if (values.json) {
    io.out(`${JSON.stringify(body, null, 2)}\n`);
    return 0;
  }
  if (sub === 'list') {
    io.out(table((body as { approvals: Shown[] }).approvals));
    return 0;
  }
  const shown = body as Shown;
  if (sub !== 'show') {
    const verb = sub === 'approve' ? (shown.state === 'approved' ? 'approved' : `approval recorded (${shown.decisions.filter((d) => d.verdict === 'approve').length} of ${shown.approvers.min})`) : sub === 'reject' ? 'rejected' : 'grant revoked';
    io.out(`${shown.id}: ${verb}\n`);
  }
  io.out(details(shown));
  return 0;
}
