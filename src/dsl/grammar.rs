//! The pest parser generated from `grammar/sparky.pest`.

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/sparky.pest"]
pub(crate) struct SparkyParser;
