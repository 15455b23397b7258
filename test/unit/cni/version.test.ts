import t from 'tap'
import { CniCode } from '../../../cni/lib/errors.js'
import {
  compareVersions,
  negotiateVersion,
  requireVersionFor,
  SUPPORTED_VERSIONS,
  versionInfo,
} from '../../../cni/lib/version.js'

t.test('every supported version negotiates to itself', async (t) => {
  for (const v of SUPPORTED_VERSIONS) t.equal(negotiateVersion(v, undefined), v)
})

t.test('cniVersions picks the highest common version', async (t) => {
  t.equal(negotiateVersion('0.4.0', ['0.4.0', '1.0.0', '1.1.0', '9.9.9']), '1.1.0')
  t.equal(negotiateVersion(undefined, ['0.3.1', '1.0.0']), '1.0.0')
  t.throws(() => negotiateVersion('1.0.0', ['2.0.0']), { code: CniCode.INCOMPATIBLE_VERSION })
  t.throws(() => negotiateVersion(undefined, '1.0.0'), { code: CniCode.INVALID_CONFIG })
})

t.test('unknown, missing or mistyped cniVersion', async (t) => {
  t.throws(() => negotiateVersion('0.2.0', undefined), { code: CniCode.INCOMPATIBLE_VERSION, msg: /0\.2\.0/ })
  t.throws(() => negotiateVersion('2.0.0', undefined), { code: CniCode.INCOMPATIBLE_VERSION })
  t.throws(() => negotiateVersion(undefined, undefined), { code: CniCode.INVALID_CONFIG, msg: /required/ })
  t.throws(() => negotiateVersion(1, undefined), { code: CniCode.INVALID_CONFIG })
})

t.test('CHECK needs 0.4.0, STATUS and GC need 1.1.0', async (t) => {
  t.throws(() => requireVersionFor('CHECK', '0.3.1'), { code: CniCode.INCOMPATIBLE_VERSION })
  t.doesNotThrow(() => requireVersionFor('CHECK', '0.4.0'))
  for (const v of ['0.3.0', '0.4.0', '1.0.0']) {
    t.throws(() => requireVersionFor('STATUS', v), { code: CniCode.INCOMPATIBLE_VERSION })
    t.throws(() => requireVersionFor('GC', v), { code: CniCode.INCOMPATIBLE_VERSION })
  }
  t.doesNotThrow(() => requireVersionFor('GC', '1.1.0'))
  for (const v of SUPPORTED_VERSIONS) t.doesNotThrow(() => requireVersionFor('ADD', v))
})

t.test('compare and VERSION output', async (t) => {
  t.ok(compareVersions('0.10.0', '0.9.0') > 0, 'numeric, not lexical')
  t.equal(compareVersions('1.1.0', '1.1.0'), 0)
  t.same(versionInfo(), {
    cniVersion: '1.1.0',
    supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'],
  })
})
