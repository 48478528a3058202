import { expressVersions } from './express';

test('the harness runs the suite on real Express 4 and Express 5', () => {
  const majors = expressVersions.map(([name]) => {
    const pkg = name === 'express 4' ? 'express4/package.json' : 'express/package.json';
    return (require(pkg) as { version: string }).version.split('.')[0];
  });
  expect(majors).toEqual(['4', '5']);
});
