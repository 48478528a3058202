import type { Request } from 'express';
import { requestSlot } from '../../../lib/internal/request-slot';

const aRequest = (): Request => ({}) as Request;

describe('requestSlot', () => {
  test('keeps one value per request, apart from every other request and slot', () => {
    const slot = requestSlot<string>();
    const other = requestSlot<string>();
    const a = aRequest();
    const b = aRequest();
    expect(slot.get(a)).toBeUndefined();
    expect(slot.has(a)).toBe(false);
    slot.set(a, 'one');
    expect(slot.get(a)).toBe('one');
    expect(slot.has(a)).toBe(true);
    expect(slot.get(b)).toBeUndefined();
    expect(other.get(a)).toBeUndefined();
    slot.clear(a);
    expect(slot.has(a)).toBe(false);
    expect(slot.get(a)).toBeUndefined();
  });

  test('getOrCreate creates once and then returns what is there', () => {
    const slot = requestSlot<string[]>();
    const req = aRequest();
    let created = 0;
    const create = (): string[] => {
      created++;
      return [];
    };
    slot.getOrCreate(req, create).push('x');
    slot.getOrCreate(req, create).push('y');
    expect(created).toBe(1);
    expect(slot.get(req)).toEqual(['x', 'y']);
  });

  test('getOrCreate keeps a value that was set as undefined rather than creating another', () => {
    const slot = requestSlot<string | undefined>();
    const req = aRequest();
    slot.set(req, undefined);
    expect(slot.getOrCreate(req, () => 'created')).toBeUndefined();
    expect(slot.has(req)).toBe(true);
  });

  test('leaves nothing on the request object a logger could dump', () => {
    const slot = requestSlot<string>();
    const req = aRequest();
    slot.set(req, 'hunter2-secret');
    expect(JSON.stringify(req)).toBe('{}');
    expect(Object.getOwnPropertySymbols(req)).toEqual([]);
  });
});
