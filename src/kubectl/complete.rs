//! Completion of a partly typed command line, answered the way kubectl
//! asks a plugin for it: kubectl (1.26 and later) runs
//! `kubectl_complete-doris` with the words typed after `kubectl doris`, the
//! last one the word being completed (empty when a new word starts), and
//! reads back one candidate a line (`candidate<TAB>description`), then a
//! line `:<directive>`, Cobra's completion protocol. The binary answers so
//! when it is invoked under that name, or with the hidden first argument
//! `__complete` as Cobra programs do.
//!
//! The candidates come from the clap definition of the command line, so
//! they follow it: subcommands, flags, the values of an enumerated
//! argument. A file argument (`-f`, a convention folder) leaves the
//! completion to the shell's file completion.

use std::fmt::Write as _;

use clap::builder::ValueHint;
use clap::{Arg, Command};

/// Cobra's shell completion directives, a bit set (`ShellCompDirective`
/// in spf13/cobra's completions.go).
pub mod directive {
    /// The shell's default: file names when there is no candidate.
    pub const DEFAULT: u8 = 0;
    /// Something failed: the candidates are to be ignored.
    pub const ERROR: u8 = 1;
    /// No space after the one candidate.
    pub const NO_SPACE: u8 = 2;
    /// No file names, even when there is no candidate.
    pub const NO_FILE_COMP: u8 = 4;
    /// The candidates are file extensions to filter file names with.
    pub const FILTER_FILE_EXT: u8 = 8;
    /// Directory names only.
    pub const FILTER_DIRS: u8 = 16;
    /// The candidates in the order given, not sorted.
    pub const KEEP_ORDER: u8 = 32;
}

/// What completes the last word.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Completion {
    /// Each candidate, with a one-line description when there is one.
    pub candidates: Vec<(String, Option<String>)>,
    /// How the shell goes on (a [`directive`] bit set).
    pub directive: u8,
}

impl Completion {
    /// The answer as Cobra's protocol has it: a line per candidate, then
    /// the directive.
    pub fn to_cobra(&self) -> String {
        let mut out = String::new();
        for (candidate, description) in &self.candidates {
            match description {
                Some(text) => writeln!(out, "{candidate}\t{text}"),
                None => writeln!(out, "{candidate}"),
            }
            .expect("writing to a String");
        }
        writeln!(out, ":{}", self.directive).expect("writing to a String");
        out
    }

    /// The candidates alone.
    pub fn names(&self) -> Vec<&str> {
        self.candidates.iter().map(|(c, _)| c.as_str()).collect()
    }
}

/// Completes the last of `words`, the words typed after the program's
/// name, for the command line `command` defines.
pub fn complete(command: &Command, words: &[String]) -> Completion {
    let mut command = command.clone();
    // Propagates the global arguments and help flags to every subcommand.
    command.build();
    let (typed, partial) = match words.split_last() {
        Some((last, before)) => (before, last.as_str()),
        None => (&[][..], ""),
    };
    let mut current = &command;
    let mut positionals = 0usize;
    // The option whose value the next word is.
    let mut wanted: Option<&Arg> = None;
    let mut only_positionals = false;
    for word in typed {
        if wanted.take().is_some() {
            continue;
        }
        if only_positionals || word == "-" || !word.starts_with('-') {
            match current.find_subcommand(word) {
                Some(sub) if !only_positionals && positionals == 0 => {
                    current = sub;
                    positionals = 0;
                }
                _ => positionals += 1,
            }
        } else if word == "--" {
            only_positionals = true;
        } else if let Some(long) = word.strip_prefix("--") {
            if !long.contains('=') {
                wanted = find_long(current, long).filter(|a| takes_value(a));
            }
        } else {
            // A cluster of short flags (-n, -nNS, -vf FILE): the first one
            // that takes a value takes the rest of the word, or the next.
            let shorts: Vec<char> = word[1..].chars().collect();
            for (i, short) in shorts.iter().enumerate() {
                let arg = current
                    .get_arguments()
                    .find(|a| a.get_short() == Some(*short));
                if let Some(arg) = arg.filter(|a| takes_value(a)) {
                    if i + 1 == shorts.len() {
                        wanted = Some(arg);
                    }
                    break;
                }
            }
        }
    }
    if let Some(arg) = wanted {
        return values(arg, partial);
    }
    if let Some(value) = partial.strip_prefix("--").and_then(|p| p.split_once('=')) {
        // --flag=partial: the value, with the flag in front as typed.
        let (long, value) = value;
        if let Some(arg) = find_long(current, long).filter(|a| takes_value(a)) {
            let mut completion = values(arg, value);
            for (candidate, _) in &mut completion.candidates {
                *candidate = format!("--{long}={candidate}");
            }
            return completion;
        }
        return nothing();
    }
    if partial.starts_with('-') && !only_positionals {
        return flags(current, partial);
    }
    let mut candidates = Vec::new();
    if positionals == 0 && !only_positionals {
        for sub in current.get_subcommands().filter(|s| !s.is_hide_set()) {
            if sub.get_name().starts_with(partial) {
                candidates.push((sub.get_name().to_string(), about(sub.get_about())));
            }
        }
    }
    match positional(current, positionals) {
        Some(arg) => {
            let mut completion = values(arg, partial);
            candidates.append(&mut completion.candidates);
            Completion {
                candidates,
                directive: completion.directive,
            }
        }
        None => Completion {
            candidates,
            directive: directive::NO_FILE_COMP,
        },
    }
}

/// The values of `arg` starting with `partial`: its enumerated values, or
/// the shell's file or directory names for a path, or nothing.
fn values(arg: &Arg, partial: &str) -> Completion {
    let possible = arg.get_possible_values();
    if !possible.is_empty() {
        return Completion {
            candidates: possible
                .iter()
                .filter(|v| !v.is_hide_set() && v.get_name().starts_with(partial))
                .map(|v| (v.get_name().to_string(), about(v.get_help())))
                .collect(),
            directive: directive::NO_FILE_COMP,
        };
    }
    match arg.get_value_hint() {
        ValueHint::AnyPath | ValueHint::FilePath | ValueHint::ExecutablePath => Completion {
            candidates: Vec::new(),
            directive: directive::DEFAULT,
        },
        ValueHint::DirPath => Completion {
            candidates: Vec::new(),
            directive: directive::FILTER_DIRS,
        },
        _ => nothing(),
    }
}

/// The flags of `command` starting with `partial`: long ones, and short
/// ones while the partial word is a single `-`.
fn flags(command: &Command, partial: &str) -> Completion {
    let mut candidates = Vec::new();
    for arg in command.get_arguments().filter(|a| !a.is_hide_set()) {
        let help = about(arg.get_help());
        if let Some(long) = arg.get_long() {
            let flag = format!("--{long}");
            if flag.starts_with(partial) {
                candidates.push((flag, help.clone()));
            }
        }
        if let Some(short) = arg.get_short().filter(|_| partial == "-") {
            candidates.push((format!("-{short}"), help));
        }
    }
    Completion {
        candidates,
        directive: directive::NO_FILE_COMP,
    }
}

fn nothing() -> Completion {
    Completion {
        candidates: Vec::new(),
        directive: directive::NO_FILE_COMP,
    }
}

fn find_long<'a>(command: &'a Command, long: &str) -> Option<&'a Arg> {
    command.get_arguments().find(|a| {
        a.get_long() == Some(long)
            || a.get_all_aliases()
                .is_some_and(|aliases| aliases.contains(&long))
    })
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
}

/// The positional argument the `index`th positional word goes to: the
/// last one takes every word past it when it takes several.
fn positional(command: &Command, index: usize) -> Option<&Arg> {
    let all: Vec<&Arg> = command.get_positionals().collect();
    all.get(index).copied().or_else(|| {
        all.last()
            .copied()
            .filter(|a| a.get_num_args().is_some_and(|n| n.max_values() > 1))
    })
}

/// The first sentence of a help text, which shells show beside a
/// candidate.
fn about(text: Option<&clap::builder::StyledStr>) -> Option<String> {
    let text = text?.to_string();
    let line = text.lines().next()?;
    let sentence = line.split(". ").next()?.trim().trim_end_matches('.');
    (!sentence.is_empty()).then(|| sentence.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli() -> Command {
        Command::new("tool")
            .arg(Arg::new("context").long("context").global(true))
            .subcommand(
                Command::new("status")
                    .about("One screen on a cluster.\nMore.")
                    .arg(Arg::new("name"))
                    .arg(Arg::new("kind").long("kind").value_parser(["dcr", "ddc"]))
                    .arg(Arg::new("namespace").short('n').long("namespace")),
            )
            .subcommand(
                Command::new("diff").arg(
                    Arg::new("file")
                        .short('f')
                        .value_parser(clap::value_parser!(std::path::PathBuf)),
                ),
            )
            .subcommand(Command::new("secret").hide(true))
            .subcommand(
                Command::new("restart")
                    .arg(Arg::new("name"))
                    .arg(Arg::new("parts").num_args(0..).value_parser(["fe", "be"])),
            )
    }

    fn words(text: &str) -> Vec<String> {
        let mut words: Vec<String> = text.split(' ').map(String::from).collect();
        if text.is_empty() {
            words = vec![String::new()];
        }
        words
    }

    fn of(text: &str) -> Completion {
        complete(&cli(), &words(text))
    }

    #[test]
    fn subcommands_complete_by_prefix_without_hidden_ones() {
        assert_eq!(of("").names(), ["status", "diff", "restart", "help"]);
        let st = of("st");
        assert_eq!(st.names(), ["status"]);
        assert_eq!(
            st.candidates[0].1.as_deref(),
            Some("One screen on a cluster")
        );
        assert_eq!(st.directive, directive::NO_FILE_COMP);
        assert_eq!(st.to_cobra(), "status\tOne screen on a cluster\n:4\n");
        assert!(of("x").candidates.is_empty());
    }

    #[test]
    fn flags_and_their_values_complete() {
        assert_eq!(of("status --k").names(), ["--kind"]);
        assert_eq!(
            of("status -").names(),
            ["--kind", "--namespace", "-n", "--context", "--help", "-h"]
        );
        let kind = of("status doris --kind ");
        assert_eq!(kind.names(), ["dcr", "ddc"]);
        assert_eq!(kind.directive, directive::NO_FILE_COMP);
        assert_eq!(of("status --kind=dd").names(), ["--kind=ddc"]);
        // A value nothing enumerates: no candidate, and no file names.
        assert_eq!(of("status -n "), nothing());
        // The value of a flag is not a subcommand.
        assert_eq!(of("status -n st").names(), Vec::<&str>::new());
        // A global flag given before the subcommand.
        assert_eq!(of("--context x st").names(), ["status"]);
    }

    #[test]
    fn a_path_is_left_to_the_shell() {
        for line in ["diff -f ", "diff -f my"] {
            let c = of(line);
            assert!(c.candidates.is_empty(), "{line}");
            assert_eq!(c.directive, directive::DEFAULT, "{line}");
        }
    }

    #[test]
    fn positional_values_follow_the_positional_taken() {
        // The cluster's name: nothing to offer, not a subcommand either.
        assert_eq!(of("restart "), nothing());
        assert_eq!(of("restart doris ").names(), ["fe", "be"]);
        assert_eq!(of("restart doris fe b").names(), ["be"]);
    }
}
