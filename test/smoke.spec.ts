import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { describe, it, expect } from '@jest/globals';

@Injectable()
class Svc { hi(): string { return 'hi'; } }
@Module({ providers: [Svc] })
class M {}

describe('toolchain', () => {
  it('loads Nest 12 in ESM jest', async () => {
    const mod = await Test.createTestingModule({ imports: [M] }).compile();
    expect(mod.get(Svc).hi()).toBe('hi');
    await mod.close();
  });
});
