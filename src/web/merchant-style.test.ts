import assert from 'node:assert/strict';
import { test } from 'node:test';
import { styleProperties } from './merchant-style.ts';

test('merchant styling: allowed properties with plain values pass, anything that could load or run is dropped', () => {
  assert.deepEqual(
    styleProperties({
      color: '#1a1a2e',
      backgroundColor: 'rgb(255, 255, 255)',
      borderRadius: '6px',
      padding: '8px 12px',
      fontFamily: "Georgia, 'Times New Roman', serif",
    }),
    [
      ['--ch-color', '#1a1a2e'],
      ['--ch-background', 'rgb(255, 255, 255)'],
      ['--ch-radius', '6px'],
      ['--ch-padding', '8px 12px'],
      ['--ch-font', "Georgia, 'Times New Roman', serif"],
    ],
  );
  assert.deepEqual(
    styleProperties({
      color: 'red; background: url(https://evil.example/x.png)',
      backgroundColor: 'url(https://evil.example/x.png)',
      borderColor: 'expression(alert(1))',
      fontFamily: 'x"; } body { display: none',
      fontSize: '10000px',
      padding: 'calc(1px + 1px)',
      display: 'none',
      __proto__: { color: 'red' },
    }),
    [],
  );
  assert.deepEqual(styleProperties(null), []);
  assert.deepEqual(styleProperties('color: red'), []);
});
