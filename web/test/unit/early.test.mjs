// Unit tests of web/app/early.js: the province of the page and the /v1/units
// query the wall starts while the page loads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { provinceOf, takeEarlyUnits, unitsURL } from '../../app/early.js';

test('the province of the page: two digits, else 01', () => {
  assert.equal(provinceOf(new URLSearchParams('province=79')), '79');
  assert.equal(provinceOf(new URLSearchParams('')), '01');
  assert.equal(provinceOf(new URLSearchParams('province=7')), '01');
  assert.equal(provinceOf(new URLSearchParams('province=01;drop')), '01');
});

test('the wall asks for simplified boundaries, whole ones only when told', () => {
  assert.equal(unitsURL('01'), '/v1/units?province=01&simplify=0.0005');
  assert.equal(unitsURL('01', true), '/v1/units?province=01');
});

test('without a page there is no early request', async () => {
  assert.equal(await takeEarlyUnits(), null);
});
