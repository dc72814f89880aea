//! The SQL the FE simulator reads: a tokenizer and the pieces statements
//! are made of (node lists, `PROPERTIES`).

use std::collections::BTreeMap;

use super::wire::{Answer, SqlError};

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    /// A keyword, identifier, number or `@@variable`.
    Word(String),
    /// A quoted string, quotes removed.
    Str(String),
    Punct(char),
}

pub(super) fn tokenize(sql: &str) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let mut chars = sql.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' || c == '\'' || c == '`' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated string starting with {c}")),
                    Some('\\') if c != '`' => match chars.next() {
                        Some(e) => s.push(e),
                        None => return Err("unterminated string".to_string()),
                    },
                    Some(q) if q == c => {
                        if chars.peek() == Some(&c) {
                            chars.next();
                            s.push(c);
                        } else {
                            break;
                        }
                    }
                    Some(other) => s.push(other),
                }
            }
            toks.push(Tok::Str(s));
        } else if c.is_alphanumeric() || "_@.$-".contains(c) {
            let mut w = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_alphanumeric() || "_@.$-".contains(c) {
                    w.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            toks.push(Tok::Word(w));
        } else if "(),=;*/".contains(c) {
            toks.push(Tok::Punct(c));
            chars.next();
        } else {
            return Err(format!("unexpected character {c:?}"));
        }
    }
    while toks.last() == Some(&Tok::Punct(';')) {
        toks.pop();
    }
    Ok(toks)
}

/// Upper-cased leading words, for matching the statement's kind.
pub(super) fn keywords(toks: &[Tok]) -> Vec<String> {
    toks.iter()
        .map_while(|t| match t {
            Tok::Word(w) => Some(w.to_ascii_uppercase()),
            _ => None,
        })
        .collect()
}

/// A backend or frontend named in a statement.
#[derive(Debug, PartialEq)]
pub(super) enum Target {
    HostPort(String, u16),
    Id(i64),
}

impl Target {
    fn parse(s: &str) -> Result<Target, String> {
        if let Ok(id) = s.trim().parse::<i64>() {
            return Ok(Target::Id(id));
        }
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("Invalid host port format: {s}"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("Invalid host port format: {s}"))?;
        if host.is_empty() {
            return Err(format!("Invalid host port format: {s}"));
        }
        Ok(Target::HostPort(host.to_string(), port))
    }

    pub(super) fn show(&self) -> String {
        match self {
            Target::HostPort(h, p) => host_port(h, *p),
            Target::Id(id) => id.to_string(),
        }
    }
}

pub(super) fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `"a", "b", ...` and the tokens after it.
pub(super) fn string_list(toks: &[Tok]) -> Result<(Vec<String>, &[Tok]), String> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        match toks.get(i) {
            Some(Tok::Str(s)) => out.push(s.clone()),
            _ => return Err("expected a quoted \"host:port\"".to_string()),
        }
        i += 1;
        if toks.get(i) == Some(&Tok::Punct(',')) {
            i += 1;
        } else {
            return Ok((out, &toks[i..]));
        }
    }
}

pub(super) fn targets(toks: &[Tok]) -> Result<(Vec<Target>, &[Tok]), String> {
    let (list, rest) = string_list(toks)?;
    let targets = list
        .iter()
        .map(|s| Target::parse(s))
        .collect::<Result<_, _>>()?;
    Ok((targets, rest))
}

/// `("k" = "v", ...)`.
pub(super) fn properties(toks: &[Tok]) -> Result<BTreeMap<String, String>, String> {
    let mut props = BTreeMap::new();
    let mut it = toks.iter();
    if it.next() != Some(&Tok::Punct('(')) {
        return Err("expected (".to_string());
    }
    loop {
        let key = match it.next() {
            Some(Tok::Str(k)) => k.clone(),
            _ => return Err("expected a quoted property name".to_string()),
        };
        if it.next() != Some(&Tok::Punct('=')) {
            return Err("expected =".to_string());
        }
        let value = match it.next() {
            Some(Tok::Str(v)) => v.clone(),
            _ => return Err("expected a quoted property value".to_string()),
        };
        props.insert(key.to_ascii_lowercase(), value);
        match it.next() {
            Some(Tok::Punct(',')) => continue,
            Some(Tok::Punct(')')) => break,
            _ => return Err("expected , or )".to_string()),
        }
    }
    if it.next().is_some() {
        return Err("unexpected words after )".to_string());
    }
    Ok(props)
}

pub(super) fn syntax_error(sql: &str, why: &str) -> Answer {
    Answer::Error(SqlError::doris(format!(
        "Syntax error in line 1: {why}: {}",
        sql.trim()
    )))
}
