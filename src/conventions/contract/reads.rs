//! Finds the ctx fields a compiled policy reads, by walking its syntax
//! tree: property chains such as `ctx.names.statefulset`,
//! `this.config.values` or `ctx["config"].hash`.
//!
//! A chain is taken to read ctx when it starts at a variable or at `this`
//! (a policy's parameter may have any name, and functions called as methods
//! see ctx as `this`), or at a variable named after the field's first part
//! (`let names = ctx.names; names.fe_service`). Each read is attributed to
//! the policies whose function reaches the function it is in.

use std::collections::{BTreeMap, BTreeSet};

use rhai::{AST, ASTFlags, ASTNode, Expr, Position, Stmt};

use super::{FieldChange, Policy};

/// A read of a renamed or removed field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaleRead {
    /// The policy whose function reaches the read.
    pub policy: Policy,
    /// The function the read is in.
    pub function: String,
    pub position: Position,
    pub change: FieldChange,
}

/// One step of a property chain: a named field, or an item of an array (or
/// a map entry under a key that is not a literal).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Field(String, Position),
    Item,
}

impl Step {
    fn text(&self) -> &str {
        match self {
            Step::Field(name, _) => name,
            Step::Item => "[]",
        }
    }
}

/// `names.fe_service` as steps `names`, `fe_service`; `pods[].role` as
/// `pods`, `[]`, `role`.
fn path_steps(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut name = part;
        let mut items = 0;
        while let Some(rest) = name.strip_suffix("[]") {
            name = rest;
            items += 1;
        }
        if !name.is_empty() {
            out.push(name);
        }
        out.extend(std::iter::repeat_n("[]", items));
    }
    out
}

/// A `.` or `[ ]` node: its two sides, whether the right one is reached by
/// index, and whether the right one ends the chain (`a[expr]`, where `expr`
/// is a whole expression rather than the rest of the chain).
fn link(expr: &Expr) -> Option<(&Expr, &Expr, bool, bool)> {
    match expr {
        Expr::Dot(b, flags, _) => Some((&b.lhs, &b.rhs, false, flags.contains(ASTFlags::BREAK))),
        Expr::Index(b, flags, _) => Some((&b.lhs, &b.rhs, true, flags.contains(ASTFlags::BREAK))),
        _ => None,
    }
}

/// Whether `expr` starts a chain: it is not the rest of its parent's chain.
fn starts_chain(expr: &Expr, parent: Option<&ASTNode>) -> bool {
    match parent {
        Some(ASTNode::Expr(parent)) => match link(parent) {
            Some((_, rhs, _, ends)) => ends || !std::ptr::eq(rhs, expr),
            None => true,
        },
        _ => true,
    }
}

/// A chain's root (a variable's name, `this` as `None`) and its steps, up to
/// the first that is not a field or item read (a method call).
fn chain(expr: &Expr) -> Option<(Option<&str>, Vec<Step>)> {
    let (lhs, rhs, by_index, ends) = link(expr)?;
    let root = match lhs {
        Expr::Variable(v, ..) => Some(v.1.as_str()),
        Expr::ThisPtr(..) => None,
        _ => return None,
    };
    let mut steps = Vec::new();
    if ends {
        step(rhs, by_index, &mut steps);
    } else {
        flatten(rhs, by_index, &mut steps);
    }
    Some((root, steps))
}

/// Appends the step of one element of a chain reached by `.` or, when
/// `by_index`, by `[ ]`; false when it is neither a field nor an item.
fn step(element: &Expr, by_index: bool, steps: &mut Vec<Step>) -> bool {
    let step = match (element, by_index) {
        (Expr::Property(p, pos), false) => Step::Field(p.2.to_string(), *pos),
        (Expr::StringConstant(name, pos), true) => Step::Field(name.to_string(), *pos),
        (_, true) => Step::Item,
        (_, false) => return false,
    };
    steps.push(step);
    true
}

/// Appends the steps of the rest of a chain, whose first element is reached
/// by `[ ]` when `by_index`, else by `.`; stops at a method call.
fn flatten(rest: &Expr, by_index: bool, steps: &mut Vec<Step>) {
    match link(rest) {
        Some((head, tail, tail_by_index, ends)) => {
            if step(head, by_index, steps) {
                if ends {
                    step(tail, tail_by_index, steps);
                } else {
                    flatten(tail, tail_by_index, steps);
                }
            }
        }
        None => {
            step(rest, by_index, steps);
        }
    }
}

/// Where a chain reads `path`: the position of its last step.
fn reads(root: Option<&str>, steps: &[Step], path: &[&str]) -> Option<Position> {
    let matches = |steps: &[Step], path: &[&str]| {
        steps.len() >= path.len() && steps.iter().zip(path).all(|(s, p)| s.text() == *p)
    };
    let last = |steps: &[Step], n: usize| match steps.get(n.checked_sub(1)?) {
        Some(Step::Field(_, pos)) => Some(*pos),
        _ => None,
    };
    if matches(steps, path) {
        return last(steps, path.len()).or(Some(Position::NONE));
    }
    // `let names = ctx.names; names.fe_service`
    if let ([first, rest @ ..], Some(root)) = (path, root)
        && !rest.is_empty()
        && root == *first
        && matches(steps, rest)
    {
        return last(steps, rest.len()).or(Some(Position::NONE));
    }
    None
}

/// Each function of `ast` by (name, number of parameters).
fn functions(ast: &AST) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = ast
        .iter_functions()
        .map(|f| (f.name.to_string(), f.params.len()))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The syntax tree of one function of `ast` alone.
fn only(ast: &AST, name: &str, params: usize) -> AST {
    // (`clone_functions_only_filtered` keeps every function of an AST.)
    let mut one = ast.clone();
    one.clear_statements()
        .retain_functions(|_, _, n, p| n == name && p == params);
    one
}

/// The names of the functions `ast`'s code calls, as functions or methods.
fn calls(ast: &AST) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    ast.walk(&mut |nodes: &[ASTNode]| {
        match nodes.last() {
            Some(ASTNode::Expr(Expr::FnCall(call, _) | Expr::MethodCall(call, _)))
            | Some(ASTNode::Stmt(Stmt::FnCall(call, _))) => {
                out.insert(call.name.to_string());
            }
            _ => {}
        }
        true
    });
    out
}

/// The reads in `ast` of the fields `changes` lists, each attributed to
/// every policy defined in `ast` whose function reaches it and whose ctx the
/// field left; in source order.
pub fn stale_reads(ast: &AST, changes: &[FieldChange]) -> Vec<StaleRead> {
    if changes.is_empty() {
        return Vec::new();
    }
    let functions = functions(ast);
    let bodies: BTreeMap<(String, usize), AST> = functions
        .iter()
        .map(|(name, params)| ((name.clone(), *params), only(ast, name, *params)))
        .collect();
    let called: BTreeMap<&str, BTreeSet<String>> = bodies
        .iter()
        .map(|((name, _), body)| (name.as_str(), calls(body)))
        .fold(BTreeMap::new(), |mut acc, (name, calls)| {
            acc.entry(name).or_insert_with(BTreeSet::new).extend(calls);
            acc
        });
    let mut out = Vec::new();
    for policy in Policy::ALL {
        let Some(entry) = policy.function() else {
            continue;
        };
        if !functions.iter().any(|(n, p)| n == entry && *p == 1) {
            continue;
        }
        let relevant: Vec<&FieldChange> = changes
            .iter()
            .filter(|c| c.policies.contains(&policy))
            .collect();
        if relevant.is_empty() {
            continue;
        }
        // The functions the entry reaches, itself included.
        let mut reached: BTreeSet<&str> = BTreeSet::from([entry]);
        let mut queue = vec![entry];
        while let Some(name) = queue.pop() {
            for next in called.get(name).into_iter().flatten() {
                if let Some((known, _)) = called.get_key_value(next.as_str())
                    && reached.insert(known)
                {
                    queue.push(known);
                }
            }
        }
        for ((name, _), body) in &bodies {
            if !reached.contains(name.as_str()) {
                continue;
            }
            body.walk(&mut |nodes: &[ASTNode]| {
                let Some(ASTNode::Expr(expr)) = nodes.last() else {
                    return true;
                };
                let parent = nodes.len().checked_sub(2).map(|i| &nodes[i]);
                if !starts_chain(expr, parent) {
                    return true;
                }
                let Some((root, steps)) = chain(expr) else {
                    return true;
                };
                for change in &relevant {
                    if let Some(position) = reads(root, &steps, &path_steps(change.path)) {
                        out.push(StaleRead {
                            policy,
                            function: name.clone(),
                            position,
                            change: **change,
                        });
                    }
                }
                true
            });
        }
    }
    out.sort_by_key(|r| {
        (
            r.position.line(),
            r.position.position(),
            r.policy,
            r.change.path,
        )
    });
    out
}
