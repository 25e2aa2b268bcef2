/**
 * A link checker for the repository's Markdown: every relative link must name a file or directory that exists, and
 * every `#anchor` a heading of its target as GitHub renders it (the anchors GitHub makes from headings, with `-1`,
 * `-2` ... for repeated ones). Links to other sites (`https:`, `mailto:`) are not followed: the suite stays offline.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** The Markdown files users and contributors read: the README, CONTRIBUTING, CHANGELOG, docs/ and bench/. */
export function documentationFiles(root: string): string[] {
  const files = ['README.md', 'CONTRIBUTING.md', 'CHANGELOG.md'].filter((file) => existsSync(path.join(root, file)));
  const walk = (dir: string): void => {
    if (!existsSync(path.join(root, dir))) return;
    for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const relative = path.posix.join(dir, entry.name);
      if (entry.isDirectory()) walk(relative);
      else if (entry.name.endsWith('.md')) files.push(relative);
    }
  };
  walk('docs');
  walk('bench');
  return files;
}

/** The document without fenced code blocks and inline code spans, where `[x](y)` is not a link. */
function withoutCode(markdown: string): string {
  const lines: string[] = [];
  let fence: string | null = null;
  for (const line of markdown.split(/\r?\n/)) {
    const marker = /^\s{0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (marker !== undefined && (fence === null || (marker[0] === fence[0] && marker.length >= fence.length))) {
      fence = fence === null ? marker : null;
      lines.push('');
      continue;
    }
    lines.push(fence === null ? line.replace(/(`+)[^`]*?\1/g, '') : '');
  }
  return lines.join('\n');
}

/** GitHub's anchor of a heading's text: lower case, punctuation dropped, spaces to hyphens. */
export function githubSlug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\p{M}\- _]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor a document's headings give, as GitHub numbers repeated ones. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of withoutCode(markdown).split('\n')) {
    const text = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1];
    if (text === undefined) continue;
    const slug = githubSlug(text);
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/** A link that leads nowhere. */
export interface BrokenLink {
  readonly file: string;
  readonly line: number;
  readonly link: string;
  readonly problem: string;
}

/**
 * The broken relative links of one file (a path relative to `root`): inline links and images, `[text](target)`,
 * and reference definitions, `[label]: target`.
 */
export function brokenLinks(root: string, file: string): BrokenLink[] {
  const text = withoutCode(readFileSync(path.join(root, file), 'utf8'));
  const broken: BrokenLink[] = [];
  const lines = text.split('\n');
  lines.forEach((line, index) => {
    const targets = [
      ...[...line.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1] ?? ''),
      ...[...line.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/g)].map((m) => m[1] ?? ''),
    ];
    for (const link of targets) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // https:, mailto:, ...
      const [target = '', anchor] = link.split('#', 2);
      const resolved = target === '' ? path.join(root, file) : path.join(root, path.dirname(file), decodeURIComponent(target));
      const report = (problem: string): void => {
        broken.push({ file, line: index + 1, link, problem });
      };
      if (!path.resolve(resolved).startsWith(path.resolve(root))) {
        report('leads outside the repository');
        continue;
      }
      if (!existsSync(resolved)) {
        report('no such file');
        continue;
      }
      if (anchor === undefined || anchor === '') continue;
      if (statSync(resolved).isDirectory() || !resolved.endsWith('.md')) {
        report('an anchor into something that is not a Markdown file');
        continue;
      }
      if (!headingAnchors(readFileSync(resolved, 'utf8')).has(anchor)) report(`no heading gives the anchor #${anchor}`);
    }
  });
  return broken;
}
