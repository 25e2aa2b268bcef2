/**
 * Reads the tables of a Markdown document (GitHub-flavoured pipe tables), so that a test can check the tables of the
 * docs (options, environment variables, defaults, error codes) against the code and keep them from drifting.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** One pipe table. */
export interface MarkdownTable {
  /** Text of the nearest heading above the table (without the `#`s), or `''` when there is none. */
  readonly heading: string;
  /** 1-based line of the header row in the document, for error messages. */
  readonly line: number;
  /** Header cells, trimmed, as written (backticks kept). */
  readonly headers: readonly string[];
  /** Each body row as header -> cell (trimmed, as written; `\|` unescaped). Missing cells are `''`. */
  readonly rows: ReadonlyArray<Readonly<Record<string, string>>>;
}

/** The README of the package. */
export function readReadme(): string {
  return readDoc('README.md');
}

/** A Markdown file of the repository, by its path from the root (`docs/reference/options.md`). */
export function readDoc(relativePath: string): string {
  return readFileSync(fileURLToPath(new URL(`../../${relativePath}`, import.meta.url)), 'utf8');
}

/** Splits a table row into cells: outer pipes optional, `\|` is a literal pipe (also inside code spans, as in GFM). */
export function splitRow(line: string): string[] {
  let body = line.trim();
  if (body.startsWith('|')) body = body.slice(1);
  if (body.endsWith('|') && !body.endsWith('\\|')) body = body.slice(0, -1);
  const cells: string[] = [];
  let cell = '';
  for (let i = 0; i < body.length; i++) {
    const ch = body[i];
    if (ch === '\\' && body[i + 1] === '|') {
      cell += '|';
      i++;
    } else if (ch === '|') {
      cells.push(cell.trim());
      cell = '';
    } else {
      cell += ch;
    }
  }
  cells.push(cell.trim());
  return cells;
}

const DELIMITER_CELL = /^:?-+:?$/;

function isDelimiterRow(line: string): boolean {
  if (!line.includes('-')) return false;
  const cells = splitRow(line);
  return cells.length > 0 && cells.every((cell) => DELIMITER_CELL.test(cell));
}

/** Every pipe table of a Markdown document, in order; tables inside fenced code blocks are ignored. */
export function parseMarkdownTables(markdown: string): MarkdownTable[] {
  const lines = markdown.split(/\r?\n/);
  const tables: MarkdownTable[] = [];
  let heading = '';
  let fence: string | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const fenceMatch = /^\s{0,3}(`{3,}|~{3,})/.exec(line);
    if (fenceMatch) {
      const marker = fenceMatch[1] ?? '';
      if (fence === null) fence = marker;
      else if (marker[0] === fence[0] && marker.length >= fence.length) fence = null;
      continue;
    }
    if (fence !== null) continue;
    const headingMatch = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (headingMatch) {
      heading = headingMatch[1] ?? '';
      continue;
    }
    const next = lines[i + 1];
    if (!line.includes('|') || next === undefined || !isDelimiterRow(next)) continue;
    const headers = splitRow(line);
    if (splitRow(next).length !== headers.length) continue; // GFM: the delimiter row must match the header row
    const rows: Record<string, string>[] = [];
    let j = i + 2;
    for (; j < lines.length; j++) {
      const rowLine = lines[j] ?? '';
      if (rowLine.trim() === '' || !rowLine.includes('|')) break;
      const cells = splitRow(rowLine);
      rows.push(Object.fromEntries(headers.map((header, k) => [header, cells[k] ?? ''])));
    }
    tables.push({ heading, line: i + 1, headers, rows });
    i = j - 1;
  }
  return tables;
}

/** How to pick a table: by its heading (substring or RegExp) and/or the headers it must have. */
export interface TableQuery {
  heading?: string | RegExp;
  /** Header cells the table must have (compared as `cellText`, case-insensitive). */
  columns?: readonly string[];
}

/**
 * The one table of the document that matches the query.
 * @throws Error when no table or more than one matches, listing the tables found
 */
export function findMarkdownTable(markdown: string, query: TableQuery): MarkdownTable {
  const matches = parseMarkdownTables(markdown).filter((table) => {
    const { heading, columns } = query;
    if (heading !== undefined && !(typeof heading === 'string' ? table.heading.includes(heading) : heading.test(table.heading))) return false;
    const have = table.headers.map((h) => cellText(h).toLowerCase());
    return (columns ?? []).every((column) => have.includes(cellText(column).toLowerCase()));
  });
  if (matches.length !== 1) {
    const found = parseMarkdownTables(markdown).map((t) => `line ${t.line} under "${t.heading}": ${t.headers.join(' | ')}`);
    throw new Error(`expected one table matching ${JSON.stringify({ ...query, heading: String(query.heading ?? '') })}, found ${matches.length}; tables: ${found.join('; ') || 'none'}`);
  }
  return matches[0] as MarkdownTable;
}

/** A cell's text without Markdown decoration: backticks, `**`/`__`/`*` emphasis, and links reduced to their text. */
export function cellText(cell: string): string {
  return cell
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/`([^`]*)`/g, '$1')
    .replace(/(\*\*|__)(.*?)\1/g, '$2')
    .replace(/(^|\W)\*(\S(?:.*?\S)?)\*(?=\W|$)/g, '$1$2')
    .trim();
}

/** The `code spans` of a cell, e.g. ['WEBSOCKETS_SERVER'] from "`WEBSOCKETS_SERVER` (empty: none)". */
export function codeSpans(cell: string): string[] {
  return [...cell.matchAll(/`([^`]*)`/g)].map((m) => m[1] ?? '');
}
