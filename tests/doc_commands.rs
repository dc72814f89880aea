//! Every command example of the README and of the guide that runs without a
//! cluster is run, and what it prints compared with the page, by trycmd.
//! trycmd reads the pages' `console` blocks: a `$ doris-operator …` line,
//! then what the command prints (stdout and stderr together; `? failed` or
//! `? <code>` after the command for an exit status other than success).
//! `...` on a line of its own stands for any lines, `[..]` within a line for
//! any text: they mark output left out, or output that varies. Commands that
//! need a cluster (`kubectl …`) are in `sh` blocks, which trycmd leaves
//! alone; so are blocks marked `text`.
//!
//! The commands run from the repository's root, so the pages use its paths
//! (`examples/…`). After a change of what a command prints,
//! `TRYCMD=overwrite cargo test --test doc_commands` writes the new output
//! into the pages (keeping the `...` and `[..]` where it can); check the diff.

#[test]
fn documented_commands_print_what_the_pages_show() {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_doris-operator"));
    trycmd::TestCases::new()
        .register_bin("doris-operator", bin)
        .case("README.md")
        .case("docs/src/**/*.md");
}
