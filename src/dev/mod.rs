//! Developer tools: the synthetic log generator and the stage benchmark.
pub mod bench;
pub mod gen;
