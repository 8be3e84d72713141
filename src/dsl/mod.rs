//! Parsing: `.sparky` text to an AST with a span on every node.
//!
//! `grammar/sparky.pest` says what is well formed; `parse.rs` builds the AST from pest's
//! pairs; `syntax_error.rs` turns pest's errors into diagnostics that read as a person would
//! say them. Nothing here knows about actions, fields or rhai: that is the compiler's job.

pub mod ast;
mod brackets;
mod grammar;
mod parse;
mod syntax_error;

pub use parse::{parse_duration, parse_field_path, parse_file};
