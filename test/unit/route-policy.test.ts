import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { refusedRoute } from '../../src/http/route-policy.js';

describe('refusedRoute', () => {
  it('refuses the slot API however the path is spelled', () => {
    for (const target of [
      '/slots/0?action=save',
      '/slots',
      '/slots?fail_on_no_slot=1',
      '/slots/0/?action=save',
      '/%73lots/0?action=restore',
      '/%53LOTS/0?action=restore',
      '/slots%2F0?action=erase',
      '/slots%2f0?action=erase',
      '//slots/0?action=save',
      '/./slots/0',
      '/x/../slots/0',
      '/x/%2e%2e/slots/0',
      '/%252573lots/0',
      '/slots\\0',
      '/slots/0%3Faction=save',
      '/upstream/tiny/slots/0?action=save',
      '/upstream/org/model/slots/0?action=save',
      '/upstream/org%2Fmodel/slots/0?action=erase',
      '/upstream/org/model//slots/0',
      '/upstream/org/model/%73lots/0',
      '/slots?model=tiny&autoload=false',
    ]) {
      assert.equal(refusedRoute(target), 'slots_managed_by_proxy', target);
    }
  });

  it('refuses model unloads and router loads', () => {
    for (const target of [
      '/unload',
      '//unload',
      '/%75nload',
      '/api/models/unload',
      '/api/models/unload/org/model',
      '/models/load',
      '/models/unload',
      '/%6Dodels/unload',
      '/upstream/x/models/unload',
    ]) {
      assert.equal(refusedRoute(target), 'models_managed_by_proxy', target);
    }
  });

  it('passes everything else', () => {
    for (const target of [
      '/v1/completions',
      '/tokenize',
      '/props',
      '/v1/models',
      '/models',
      '/running',
      '/upstream/org/model/v1/models',
      '/v1/embeddings?x=/slots/0',
      '/slotsx/0',
      '/my-slots',
      '/%zz/%',
    ]) {
      assert.equal(refusedRoute(target), undefined, target);
    }
  });

  it('a path that only becomes a slot path once its dots are resolved, or only before, is refused', () => {
    assert.equal(refusedRoute('/slots/0/../../v1/models'), 'slots_managed_by_proxy');
    assert.equal(refusedRoute('/v1/../slots/0'), 'slots_managed_by_proxy');
  });
});
