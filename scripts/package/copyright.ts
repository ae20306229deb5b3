// The machine-readable Debian copyright file (DEP-5) of the package: the project itself and
// every npm package bundled under node_modules, with the licence each one declares.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface BundledPackage {
  /** The path under node_modules, like "@jellybrick/dbus-next" or "logform/node_modules/@colors/colors". */
  dir: string;
  name: string;
  version: string;
  /** The SPDX identifier from its package.json. */
  license: string;
  /** "Copyright ..." lines of its licence file, or else its package.json author. */
  holders: string[];
}

/** DEP-5 names and texts of the licences bundled packages may carry; anything else stops the build. */
const LICENSES: Record<string, { dep5: string; text: string }> = {
  'Apache-2.0': {
    dep5: 'Apache-2.0',
    text: `Licensed under the Apache License, Version 2.0 (the "License"); you may not use this
file except in compliance with the License. You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software distributed under the
License is distributed on an "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND,
either express or implied. See the License for the specific language governing permissions
and limitations under the License.

On Debian systems, the complete text of the Apache License, Version 2.0 can be found in
"/usr/share/common-licenses/Apache-2.0".`,
  },
  MIT: {
    dep5: 'Expat',
    text: `Permission is hereby granted, free of charge, to any person obtaining a copy of this
software and associated documentation files (the "Software"), to deal in the Software
without restriction, including without limitation the rights to use, copy, modify, merge,
publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons
to whom the Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR
PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE
FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
DEALINGS IN THE SOFTWARE.`,
  },
  ISC: {
    dep5: 'ISC',
    text: `Permission to use, copy, modify, and/or distribute this software for any purpose with
or without fee is hereby granted, provided that the above copyright notice and this
permission notice appear in all copies.

THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES WITH REGARD TO
THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS. IN NO EVENT
SHALL THE AUTHOR BE LIABLE FOR ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR
ANY DAMAGES WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN ACTION OF
CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF OR IN CONNECTION WITH THE USE
OR PERFORMANCE OF THIS SOFTWARE.`,
  },
};

/** A DEP-5 field value over several lines: continuation lines start with a space, empty ones are " .". */
function field(name: string, lines: string[]): string {
  return `${name}: ${lines.map((l, i) => (i === 0 ? l : l === '' ? ' .' : ` ${l}`)).join('\n')}`;
}

/** The copyright file for the bundled packages, under the payload directory `root`. Pure. */
export function renderCopyright(root: string, packages: readonly BundledPackage[]): string {
  const used = new Set<string>();
  const paragraphs = [
    [
      'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
      'Upstream-Name: virt-lvmlockd',
      'Comment: The npm packages under node_modules are bundled as the lockfile pins them;',
      ' each paragraph names the licence declared in its package.json.',
    ].join('\n'),
    ['Files: *', 'Copyright: virt-lvmlockd authors', 'License: GPL-3+'].join('\n'),
  ];
  for (const pkg of [...packages].sort((a, b) => a.dir.localeCompare(b.dir))) {
    const license = LICENSES[pkg.license];
    if (!license) {
      throw new Error(`bundled package ${pkg.name}@${pkg.version} (node_modules/${pkg.dir}) declares the licence ${JSON.stringify(pkg.license)}, which the copyright file does not know: add its DEP-5 name and text`);
    }
    used.add(pkg.license);
    const holders = pkg.holders.length > 0 ? pkg.holders : [`the authors of ${pkg.name}`];
    paragraphs.push(
      [`Files: ${root}/node_modules/${pkg.dir}/*`, field('Copyright', holders), `License: ${license.dep5}`, `Comment: ${pkg.name} ${pkg.version}`].join('\n'),
    );
  }
  paragraphs.push(
    [
      'License: GPL-3+',
      ' This program is free software: you can redistribute it and/or modify it under the terms',
      ' of the GNU General Public License as published by the Free Software Foundation, either',
      ' version 3 of the License, or (at your option) any later version.',
      ' .',
      ' On Debian systems, the complete text of the GNU General Public License version 3 can be',
      ' found in "/usr/share/common-licenses/GPL-3".',
    ].join('\n'),
  );
  for (const id of [...used].sort()) {
    const license = LICENSES[id]!;
    paragraphs.push(field('License', [license.dep5, ...license.text.split('\n')]));
  }
  return `${paragraphs.join('\n\n')}\n`;
}

/** Copyright lines of a licence text ("Copyright (c) 2015 Jane Doe"), without the prefix. */
export function copyrightLines(licenseText: string): string[] {
  const out: string[] = [];
  for (const line of licenseText.split(/\r?\n/)) {
    const m = /^\s*Copyright\s*(?:\(c\)|©)?\s*(.+?)\s*$/i.exec(line);
    if (m && /\d{4}/.test(m[1]!)) out.push(m[1]!);
  }
  return [...new Set(out)];
}

function authorOf(author: unknown): string | undefined {
  if (typeof author === 'string') return author;
  if (author && typeof author === 'object' && typeof (author as { name?: unknown }).name === 'string') {
    const a = author as { name: string; email?: string };
    return a.email ? `${a.name} <${a.email}>` : a.name;
  }
  return undefined;
}

/** Every package directory under a node_modules tree, scoped and nested ones included. */
async function packageDirs(modules: string, prefix = ''): Promise<string[]> {
  const dirs: string[] = [];
  const list = async (dir: string) => (await readdir(dir, { withFileTypes: true }).catch(() => [])).filter((e) => e.isDirectory() && !e.name.startsWith('.'));
  const add = async (rel: string) => {
    dirs.push(rel);
    dirs.push(...(await packageDirs(modules, `${rel}/node_modules/`)));
  };
  for (const entry of await list(join(modules, prefix))) {
    if (entry.name.startsWith('@')) {
      for (const scoped of await list(join(modules, prefix, entry.name))) await add(`${prefix}${entry.name}/${scoped.name}`);
    } else {
      await add(`${prefix}${entry.name}`);
    }
  }
  return dirs;
}

/** Reads what renderCopyright needs from the bundled packages' package.json and licence files. */
export async function readBundled(modules: string): Promise<BundledPackage[]> {
  const out: BundledPackage[] = [];
  for (const dir of await packageDirs(modules)) {
    const manifest = JSON.parse(await readFile(join(modules, dir, 'package.json'), 'utf8')) as Record<string, unknown>;
    const files = await readdir(join(modules, dir));
    let holders: string[] = [];
    for (const f of files.filter((n) => /^(licen[cs]e|copying)/i.test(n))) holders.push(...copyrightLines(await readFile(join(modules, dir, f), 'utf8')));
    if (holders.length === 0) {
      const author = authorOf(manifest.author);
      holders = author ? [author] : [];
    }
    out.push({ dir, name: String(manifest.name), version: String(manifest.version), license: String(manifest.license), holders });
  }
  return out;
}

// Usage: node copyright.js NODE_MODULES_DIR INSTALLED_ROOT > copyright
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, '/'))) {
  const [modules, root] = process.argv.slice(2);
  if (!modules || !root) {
    process.stderr.write('usage: copyright.js NODE_MODULES_DIR INSTALLED_ROOT\n');
    process.exit(2);
  }
  readBundled(modules)
    .then((packages) => process.stdout.write(renderCopyright(root.replace(/^\/+/, ''), packages)))
    .catch((err: unknown) => {
      process.stderr.write(`copyright: ${(err as Error).message}\n`);
      process.exit(1);
    });
}
