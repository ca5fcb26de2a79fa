// Bundling only: `import { z } from 'zod'` keeps all of zod (every locale,
// JSON Schema conversion) in an esbuild bundle, because `z` is one namespace
// object. build.mjs points 'zod' here, at the constructors shared/ and the
// SDK call, so the rest can be left out. A constructor missing here is
// undefined in the bundle and fails at import time (the schemas are built
// when their modules load), so the suites that import the package catch it.
import { array, boolean, email, enum as enum_, literal, looseObject, number, object, record, string, union, unknown, ZodType } from 'zod/v4';

export const z = { array, boolean, email, enum: enum_, literal, looseObject, number, object, record, string, union, unknown, ZodType };
export default z;
