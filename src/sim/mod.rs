//! In-memory provider simulator speaking the OpenRouter API of PROVIDERS.md,
//! with fault knobs. Used by `rekey sim`, `rekey dev` and the tests.
//! (Filled in by the simulator work.)
