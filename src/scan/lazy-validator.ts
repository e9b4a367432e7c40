import { Ajv, type Options, type ValidateFunction } from 'ajv';

/**
 * A JSON Schema validator compiled on first use: compiling costs more CPU time than a whole scan of a
 * few manifests, and most scans read no configuration or waiver file.
 */
export function lazyValidator(schema: object, options: Options): () => ValidateFunction {
  let validate: ValidateFunction | undefined;
  return () => {
    validate ??= new Ajv(options).compile(schema);
    return validate;
  };
}
