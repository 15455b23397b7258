// Fastify's schema compilers, made lazy. Fastify compiles every route's
// request validators (ajv) and response serializers (fast-json-stringify) when
// the app gets ready, before the agent serves: measured on a restart with a
// live lease, 0.5 s of CPU (plus the garbage it leaves) of a ~2 s start-up
// (issue 18's goal: 2 s), for ~50 routes of which a restart uses two or three.
// Here the same compilers (fastify's own defaults, same options) build each
// route's function on the route's first request instead. A schema is compiled
// exactly as before, only later; test/unit/api/schemas.test.ts compiles every
// route's schemas eagerly so a broken one still fails a test, not a request.
import AjvCompiler from '@fastify/ajv-compiler'
import SerializerSelector from '@fastify/fast-json-stringify-compiler'
import type { FastifyServerOptions } from 'fastify'

type CompilersFactory = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>

type Compiled = (data: never) => unknown
type Compiler = (route: never) => Compiled
type Factory = (...args: never[]) => Compiler

/** factory's compilers, each building a route's function on its first call */
function deferred<F extends Factory>(factory: F): F {
  return ((...args: Parameters<F>) => {
    let compiler: Compiler | undefined
    return (route: never) => {
      let fn: Compiled | undefined
      const compiled = (): Compiled => {
        if (fn) return fn
        const c = compiler ?? factory(...args)
        compiler = c
        const f = c(route)
        fn = f
        return f
      }
      const lazyFn = (data: never) => compiled()(data)
      // fastify reads a failed validator's errors from the function, as ajv leaves them
      Object.defineProperty(lazyFn, 'errors', { get: () => (fn as { errors?: unknown } | undefined)?.errors })
      return lazyFn
    }
  }) as F
}

/** fastify's default compilers, deferred to each route's first request */
export function lazyCompilers(): CompilersFactory {
  return {
    buildValidator: deferred(AjvCompiler() as unknown as Factory) as never,
    buildSerializer: deferred(SerializerSelector() as unknown as Factory) as never,
  }
}
