import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { copyrightLines, renderCopyright, type BundledPackage } from '../../scripts/package/copyright.js';

const pkg = (over: Partial<BundledPackage>): BundledPackage => ({
  dir: 'winston',
  name: 'winston',
  version: '3.19.0',
  license: 'MIT',
  holders: ['2010 Charlie Robbins'],
  ...over,
});

describe('renderCopyright', () => {
  test('the project is GPL-3+ and each bundled package gets its own Files paragraph with its licence', () => {
    const text = renderCopyright('usr/lib/virt-lvmlockd', [pkg({}), pkg({ dir: 'yaml', name: 'yaml', version: '2.9.1', license: 'ISC', holders: ['Eemeli Aro <eemeli@gmail.com>'] })]);
    assert.match(text, /^Format: https:\/\/www\.debian\.org\/doc\/packaging-manuals\/copyright-format\/1\.0\/\n/);
    assert.match(text, /\n\nFiles: \*\nCopyright: virt-lvmlockd authors\nLicense: GPL-3\+\n/);
    assert.match(text, /\n\nFiles: usr\/lib\/virt-lvmlockd\/node_modules\/winston\/\*\nCopyright: 2010 Charlie Robbins\nLicense: Expat\nComment: winston 3\.19\.0\n/);
    assert.match(text, /\n\nFiles: usr\/lib\/virt-lvmlockd\/node_modules\/yaml\/\*\nCopyright: Eemeli Aro <eemeli@gmail\.com>\nLicense: ISC\n/);
    assert.match(text, /\n\nLicense: GPL-3\+\n .*\n[^]*\/usr\/share\/common-licenses\/GPL-3/);
    // Each licence text once, as a stand-alone paragraph whose lines are indented.
    assert.equal(text.match(/^License: Expat$/gm)?.length, 2);
    assert.match(text, /\n\nLicense: Expat\n Permission is hereby granted[^]*\n \.\n The above copyright notice/);
    assert.match(text, /\n\nLicense: ISC\n Permission to use, copy, modify/);
  });

  test('a licence the file does not know stops the build, naming the package and the licence', () => {
    assert.throws(
      () => renderCopyright('usr/lib/x', [pkg({ dir: 'typescript', name: 'typescript', version: '5.9.3', license: 'MPL-2.0' })]),
      /typescript@5\.9\.3 \(node_modules\/typescript\) declares the licence "MPL-2\.0"/,
    );
  });

  test('several holders become continuation lines; a package with none names its authors', () => {
    const text = renderCopyright('r', [pkg({ holders: ['2015 A', '2016 B'] }), pkg({ dir: 'ms', name: 'ms', holders: [] })]);
    assert.match(text, /Copyright: 2015 A\n 2016 B\n/);
    assert.match(text, /Files: r\/node_modules\/ms\/\*\nCopyright: the authors of ms\n/);
  });
});

describe('copyrightLines', () => {
  test('takes the Copyright lines with a year, without the prefix, once each', () => {
    const license = 'The MIT License\n\nCopyright (c) 2010 Charlie Robbins\nCopyright © 2015 Jane\ncopyright 2010 Charlie Robbins\n\nThe above copyright notice and this permission notice shall be included';
    assert.deepEqual(copyrightLines(license), ['2010 Charlie Robbins', '2015 Jane']);
  });
});
