//! Parsing Nix source: rnix for the syntax, then the checks Nix's own parser makes before anything is
//! evaluated: attributes defined twice (nested attribute sets written in several places merge), duplicate
//! formal arguments, and variables that no enclosing scope defines (unless a `with` could supply them).

use std::collections::{HashMap, HashSet};

use rnix::ast::{self, HasEntry};
use rnix::{SyntaxNode, TextRange};
use rowan::ast::AstNode;
use thiserror::Error;

/// A parse error at a place in a file.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{message}\n       at {file}:{line}:{column}")]
pub struct ParseError {
    pub message: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
}

/// Names every scope defines: the constants and the builtins Nix puts in the global scope.
pub(crate) const GLOBALS: &[&str] = &[
    "abort",
    "baseNameOf",
    "break",
    "builtins",
    "derivation",
    "derivationStrict",
    "dirOf",
    "false",
    "fetchGit",
    "fetchMercurial",
    "fetchTarball",
    "fetchTree",
    "fromTOML",
    "import",
    "isNull",
    "map",
    "null",
    "placeholder",
    "removeAttrs",
    "scopedImport",
    "throw",
    "toString",
    "true",
];

/// Parses and checks `source`; `file` names it in errors.
pub fn parse(source: &str, file: &str) -> Result<ast::Root, ParseError> {
    parse_in_scope(source, file, &[])
}

/// Like `parse`, with `names` defined around the whole file (what `scopedImport` supplies).
pub fn parse_in_scope(source: &str, file: &str, names: &[&str]) -> Result<ast::Root, ParseError> {
    // Nix's lexer ends lines at CR, CR LF or LF (in comments and strings alike); rnix knows only LF.
    let normalized;
    let source = if source.contains('\r') {
        normalized = source.replace("\r\n", "\n").replace('\r', "\n");
        normalized.as_str()
    } else {
        source
    };
    let parsed = rnix::Root::parse(source);
    let at = |range: TextRange, message: String| {
        let (line, column) = line_column(source, usize::from(range.start()));
        ParseError {
            message,
            file: file.to_string(),
            line,
            column,
        }
    };
    if let Some(error) = parsed.errors().first() {
        let (offset, message) = nix_syntax_error(source, error);
        return Err(at(TextRange::empty((offset as u32).into()), message));
    }
    let root = parsed.tree();
    let mut checker = Checker { problem: None };
    if let Some(expr) = root.expr() {
        let mut scopes = Vec::new();
        if !names.is_empty() {
            scopes.push(Scope::Names(names.iter().map(|n| n.to_string()).collect()));
        }
        checker.expr(&expr, &mut scopes);
    }
    match checker.problem {
        Some((range, message)) => Err(at(range, message)),
        None => Ok(root),
    }
}

/// rnix's first error in the words and at the place of Nix 2.8's bison parser: `syntax error, unexpected X,
/// expecting Y` with tokens named as Nix names them (`'='`, `ID`, `end of file`, ...). rnix's lists of wanted
/// tokens are its own; they are shown only where they are what bison lists (one to four tokens).
fn nix_syntax_error(source: &str, error: &rnix::ParseError) -> (usize, String) {
    use rnix::ParseError as E;
    let tokens: Vec<(rnix::SyntaxKind, usize, &str)> = {
        let mut at = 0;
        rnix::tokenize(source)
            .map(|(kind, text)| {
                at += text.len();
                (kind, at - text.len(), text)
            })
            .collect()
    };
    // Nix places the end of the file at the start of the last thing its lexer read, blanks and comments too.
    let eof = tokens.last().map_or(0, |t| t.1);
    let significant = |t: &&(rnix::SyntaxKind, usize, &str)| {
        !matches!(
            t.0,
            rnix::SyntaxKind::TOKEN_WHITESPACE | rnix::SyntaxKind::TOKEN_COMMENT
        )
    };
    let token_at = |offset: usize| tokens.iter().filter(significant).find(|t| t.1 >= offset);
    let before = |offset: usize| tokens.iter().filter(significant).rev().find(|t| t.1 < offset);
    let unexpected = |offset: usize| match token_at(offset) {
        Some(t) => nix_token_name(t.0, t.2),
        None => "end of file".to_string(),
    };
    let expecting = |wanted: &[rnix::SyntaxKind], offset: usize| -> Option<String> {
        use rnix::SyntaxKind::*;
        let names: Vec<String> = match wanted {
            // After an attribute name in a binding, a `.` could continue the path.
            [TOKEN_ASSIGN] => vec!["'.'".into(), "'='".into()],
            // An attribute name after `.`; elsewhere (inherit) bison has more choices and lists none.
            [TOKEN_IDENT, TOKEN_OR, TOKEN_CUR_POS] => match before(offset) {
                Some(t) if t.0 == TOKEN_DOT => ["ID", "OR_KW", "DOLLAR_CURLY", "'\"'"].map(String::from).to_vec(),
                _ => return None,
            },
            _ if wanted.len() > 4 => return None,
            _ => wanted.iter().map(|k| nix_token_name(*k, "")).collect(),
        };
        Some(names.join(" or "))
    };
    let with = |head: String, expected: Option<String>| match expected {
        Some(e) => format!("syntax error, unexpected {head}, expecting {e}"),
        None => format!("syntax error, unexpected {head}"),
    };
    match error {
        // A string the file ends inside: rnix's error token is the rest of the file, Nix's lexer reads a
        // string part and then the end.
        E::UnexpectedWanted(rnix::SyntaxKind::TOKEN_ERROR, range, _) if usize::from(range.end()) == source.len() => {
            let start = usize::from(range.start());
            let indented = tokens
                .iter()
                .rev()
                .find(|t| t.1 < start && t.0 == rnix::SyntaxKind::TOKEN_STRING_START)
                .is_some_and(|t| t.2 == "''");
            let expected = if indented {
                "IND_STR or DOLLAR_CURLY or IND_STRING_CLOSE"
            } else {
                "'\"'"
            };
            (start, with("end of file".into(), Some(expected.into())))
        }
        E::UnexpectedWanted(_, range, wanted) => {
            let start = usize::from(range.start());
            (start, with(unexpected(start), expecting(wanted, start)))
        }
        E::UnexpectedExtra(range) => {
            let start = usize::from(range.start());
            (start, with(unexpected(start), Some("end of file".into())))
        }
        E::Unexpected(range) | E::UnexpectedDoubleBind(range) => {
            let start = usize::from(range.start());
            if token_at(start).is_none() {
                (eof, with("end of file".into(), None))
            } else {
                (start, with(unexpected(start), None))
            }
        }
        E::UnexpectedEOFWanted(wanted) => (eof, with("end of file".into(), expecting(wanted, source.len()))),
        E::UnexpectedEOF => {
            // Bison expects only `)` when the innermost open bracket is `(` and what is inside is complete.
            let mut open = Vec::new();
            for t in tokens.iter().filter(significant) {
                use rnix::SyntaxKind::*;
                match t.0 {
                    TOKEN_L_PAREN | TOKEN_L_BRACK | TOKEN_L_BRACE | TOKEN_INTERPOL_START => open.push(t.0),
                    TOKEN_R_PAREN | TOKEN_R_BRACK | TOKEN_R_BRACE | TOKEN_INTERPOL_END => {
                        open.pop();
                    }
                    _ => {}
                }
            }
            let complete = before(source.len()).is_some_and(|t| {
                use rnix::SyntaxKind::*;
                matches!(
                    t.0,
                    TOKEN_IDENT
                        | TOKEN_INTEGER
                        | TOKEN_FLOAT
                        | TOKEN_R_PAREN
                        | TOKEN_R_BRACK
                        | TOKEN_R_BRACE
                        | TOKEN_STRING_END
                        | TOKEN_PATH_ABS
                        | TOKEN_PATH_REL
                        | TOKEN_PATH_HOME
                        | TOKEN_PATH_SEARCH
                        | TOKEN_URI
                )
            });
            let expected =
                (open.last() == Some(&rnix::SyntaxKind::TOKEN_L_PAREN) && complete).then(|| "')'".to_string());
            (eof, with("end of file".into(), expected))
        }
        E::DuplicatedArgs(range, name) => (
            usize::from(range.start()),
            format!("duplicate formal function argument '{name}'"),
        ),
        other => (eof, format!("syntax error, {other}")),
    }
}

/// A token as Nix's parser names it in its messages.
fn nix_token_name(kind: rnix::SyntaxKind, text: &str) -> String {
    use rnix::SyntaxKind::*;
    let name = match kind {
        TOKEN_ASSERT => "ASSERT",
        TOKEN_ELSE => "ELSE",
        TOKEN_IF => "IF",
        TOKEN_IN => "IN",
        TOKEN_INHERIT => "INHERIT",
        TOKEN_LET => "LET",
        TOKEN_OR => "OR_KW",
        TOKEN_REC => "REC",
        TOKEN_THEN => "THEN",
        TOKEN_WITH => "WITH",
        TOKEN_L_BRACE => "'{'",
        TOKEN_R_BRACE | TOKEN_INTERPOL_END => "'}'",
        TOKEN_L_BRACK => "'['",
        TOKEN_R_BRACK => "']'",
        TOKEN_L_PAREN => "'('",
        TOKEN_R_PAREN => "')'",
        TOKEN_ASSIGN => "'='",
        TOKEN_AT => "'@'",
        TOKEN_COLON => "':'",
        TOKEN_COMMA => "','",
        TOKEN_DOT => "'.'",
        TOKEN_QUESTION => "'?'",
        TOKEN_SEMICOLON => "';'",
        TOKEN_ELLIPSIS => "ELLIPSIS",
        TOKEN_CONCAT => "CONCAT",
        TOKEN_UPDATE => "UPDATE",
        TOKEN_INVERT => "'!'",
        TOKEN_ADD => "'+'",
        TOKEN_SUB => "'-'",
        TOKEN_MUL => "'*'",
        TOKEN_DIV => "'/'",
        TOKEN_LESS => "'<'",
        TOKEN_MORE => "'>'",
        TOKEN_LESS_OR_EQ => "LEQ",
        TOKEN_MORE_OR_EQ => "GEQ",
        TOKEN_EQUAL => "EQ",
        TOKEN_NOT_EQUAL => "NEQ",
        TOKEN_AND_AND => "AND",
        TOKEN_OR_OR => "OR",
        TOKEN_IMPLICATION => "IMPL",
        TOKEN_IDENT | TOKEN_CUR_POS => "ID",
        TOKEN_INTEGER => "INT",
        TOKEN_FLOAT => "FLOAT",
        TOKEN_PATH_ABS | TOKEN_PATH_REL => "PATH",
        TOKEN_PATH_HOME => "HPATH",
        TOKEN_PATH_SEARCH => "SPATH",
        TOKEN_URI => "URI",
        TOKEN_INTERPOL_START => "DOLLAR_CURLY",
        TOKEN_STRING_START | TOKEN_STRING_END if text == "''" => {
            if kind == TOKEN_STRING_START {
                "IND_STRING_OPEN"
            } else {
                "IND_STRING_CLOSE"
            }
        }
        TOKEN_STRING_START | TOKEN_STRING_END => "'\"'",
        TOKEN_STRING_CONTENT => "STR",
        _ => return format!("{kind:?}"),
    };
    name.to_string()
}

fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

enum Scope {
    Names(HashSet<String>),
    /// A `with`: any name may come from it at run time.
    With,
}

/// One level of an attribute set being checked for duplicates.
#[derive(Default)]
struct AttrTree {
    entries: HashMap<String, AttrEntry>,
}

enum AttrEntry {
    /// A nested set that further definitions may extend; `rec` if it was written as a `rec { }` literal.
    Set(AttrTree, bool),
    Value,
}

#[derive(Default)]
struct Group {
    names: HashSet<String>,
    rec_sets: HashMap<String, HashSet<String>>,
}

struct Checker {
    /// The first problem found (Nix reports one).
    problem: Option<(TextRange, String)>,
}

impl Checker {
    fn report(&mut self, range: TextRange, message: String) {
        if self.problem.is_none() {
            self.problem = Some((range, message));
        }
    }

    fn expr(&mut self, expr: &ast::Expr, scopes: &mut Vec<Scope>) {
        if self.problem.is_some() {
            return;
        }
        match expr {
            ast::Expr::Ident(ident) => {
                let name = ident.syntax().text().to_string();
                let defined = GLOBALS.contains(&name.as_str())
                    || name.starts_with("__")
                    || scopes.iter().any(|s| match s {
                        Scope::With => true,
                        Scope::Names(names) => names.contains(&name),
                    });
                if !defined {
                    self.report(ident.syntax().text_range(), format!("undefined variable '{name}'"));
                }
            }
            ast::Expr::Lambda(lambda) => self.lambda(lambda, scopes),
            ast::Expr::LetIn(let_in) => {
                let group = self.bindings(let_in, true);
                scopes.push(Scope::Names(group.names.clone()));
                self.binding_values(let_in, scopes, true, &group);
                if let Some(body) = let_in.body() {
                    self.expr(&body, scopes);
                }
                scopes.pop();
            }
            ast::Expr::LegacyLet(legacy) => {
                let group = self.bindings(legacy, true);
                scopes.push(Scope::Names(group.names.clone()));
                self.binding_values(legacy, scopes, true, &group);
                scopes.pop();
            }
            ast::Expr::AttrSet(set) => {
                let recursive = set.rec_token().is_some();
                let group = self.bindings(set, recursive);
                if recursive {
                    scopes.push(Scope::Names(group.names.clone()));
                    self.binding_values(set, scopes, true, &group);
                    scopes.pop();
                } else {
                    self.binding_values(set, scopes, false, &group);
                }
            }
            ast::Expr::With(with) => {
                if let Some(namespace) = with.namespace() {
                    self.expr(&namespace, scopes);
                }
                scopes.push(Scope::With);
                if let Some(body) = with.body() {
                    self.expr(&body, scopes);
                }
                scopes.pop();
            }
            ast::Expr::Select(select) => {
                if let Some(inner) = select.expr() {
                    self.expr(&inner, scopes);
                }
                if let Some(path) = select.attrpath() {
                    self.attrpath(&path, scopes);
                }
                if let Some(default) = select.default_expr() {
                    self.expr(&default, scopes);
                }
            }
            ast::Expr::HasAttr(has) => {
                if let Some(inner) = has.expr() {
                    self.expr(&inner, scopes);
                }
                if let Some(path) = has.attrpath() {
                    self.attrpath(&path, scopes);
                }
            }
            other => self.children(other.syntax(), scopes),
        }
    }

    /// The expressions inside an attribute path: dynamic parts and string interpolations, not the names.
    fn attrpath(&mut self, path: &ast::Attrpath, scopes: &mut Vec<Scope>) {
        for attr in path.attrs() {
            match attr {
                ast::Attr::Ident(_) => {}
                ast::Attr::Dynamic(dynamic) => {
                    if let Some(expr) = dynamic.expr() {
                        self.expr(&expr, scopes);
                    }
                }
                ast::Attr::Str(string) => self.children(string.syntax(), scopes),
            }
        }
    }

    /// Visits every expression below `node` that no special form above handles.
    fn children(&mut self, node: &SyntaxNode, scopes: &mut Vec<Scope>) {
        for child in node.children() {
            match ast::Expr::cast(child.clone()) {
                Some(expr) => self.expr(&expr, scopes),
                None => self.children(&child, scopes),
            }
        }
    }

    fn lambda(&mut self, lambda: &ast::Lambda, scopes: &mut Vec<Scope>) {
        let mut names = HashSet::new();
        let mut defaults = Vec::new();
        match lambda.param() {
            Some(ast::Param::IdentParam(param)) => {
                if let Some(ident) = param.ident() {
                    names.insert(ident.syntax().text().to_string());
                }
            }
            Some(ast::Param::Pattern(pattern)) => {
                let bind = pattern.pat_bind().and_then(|b| b.ident());
                for entry in pattern.pat_entries() {
                    let Some(ident) = entry.ident() else { continue };
                    let name = ident.syntax().text().to_string();
                    if !names.insert(name.clone()) {
                        let message = format!("duplicate formal function argument '{name}'");
                        self.report(ident.syntax().text_range(), message);
                    }
                    defaults.extend(entry.default());
                }
                if let Some(bind) = bind {
                    let name = bind.syntax().text().to_string();
                    if !names.insert(name.clone()) {
                        let message = format!("duplicate formal function argument '{name}'");
                        self.report(bind.syntax().text_range(), message);
                    }
                }
            }
            None => {}
        }
        scopes.push(Scope::Names(names));
        for default in &defaults {
            self.expr(default, scopes);
        }
        if let Some(body) = lambda.body() {
            self.expr(&body, scopes);
        }
        scopes.pop();
    }

    /// Checks the keys of a binding group for duplicates; returns the names it defines at its top level, and for
    /// each top-level `rec { }` literal the names inside it.
    fn bindings(&mut self, node: &impl HasEntry, recursive: bool) -> Group {
        let mut tree = AttrTree::default();
        for entry in node.entries() {
            match entry {
                ast::Entry::Inherit(inherit) => {
                    for attr in inherit.attrs() {
                        if let Some(name) = static_key(&attr) {
                            self.define(&mut tree, "", &[(name, attr.syntax().text_range())], None);
                        }
                    }
                }
                ast::Entry::AttrpathValue(binding) => {
                    let Some(path) = binding.attrpath() else { continue };
                    let mut keys = Vec::new();
                    for attr in path.attrs() {
                        match static_key(&attr) {
                            Some(key) => keys.push((key, attr.syntax().text_range())),
                            None => break,
                        }
                    }
                    // A dynamic key anywhere ends what can be checked before evaluation.
                    if keys.len() == path.attrs().count() {
                        self.define(&mut tree, "", &keys, binding.value().as_ref());
                    } else if !keys.is_empty() && recursive {
                        // `rec { ${x} = ...; }` style dynamic names are not in scope; only the static prefix is.
                        tree.entries
                            .entry(keys[0].0.clone())
                            .or_insert(AttrEntry::Set(AttrTree::default(), false));
                    }
                }
            }
        }
        let mut group = Group::default();
        for (name, entry) in tree.entries {
            if let AttrEntry::Set(inner, true) = &entry {
                group
                    .rec_sets
                    .insert(name.clone(), inner.entries.keys().cloned().collect());
            }
            group.names.insert(name);
        }
        group
    }

    /// Adds `path = value` to `tree`, merging nested sets as Nix does and reporting a real duplicate.
    fn define(&mut self, tree: &mut AttrTree, prefix: &str, path: &[(String, TextRange)], value: Option<&ast::Expr>) {
        let Some(((key, range), rest)) = path.split_first() else {
            return;
        };
        if !rest.is_empty() {
            let entry = tree
                .entries
                .entry(key.clone())
                .or_insert_with(|| AttrEntry::Set(AttrTree::default(), false));
            match entry {
                AttrEntry::Set(child, _) => self.define(child, &format!("{prefix}{key}."), rest, value),
                AttrEntry::Value => self.report(*range, format!("attribute '{prefix}{key}' already defined")),
            }
            return;
        }
        let literal_set = match value {
            Some(ast::Expr::AttrSet(set)) => Some(set.clone()),
            _ => None,
        };
        match (tree.entries.get_mut(key), literal_set) {
            (None, None) => {
                tree.entries.insert(key.clone(), AttrEntry::Value);
            }
            (None, Some(set)) => {
                let mut child = AttrTree::default();
                // A set literal checks its own bindings by itself: its duplicates are named from inside it.
                self.merge_literal(&mut child, "", &set);
                tree.entries
                    .insert(key.clone(), AttrEntry::Set(child, set.rec_token().is_some()));
            }
            (Some(AttrEntry::Set(child, _)), Some(set)) => self.merge_literal(child, &format!("{prefix}{key}."), &set),
            (Some(_), _) => self.report(*range, format!("attribute '{prefix}{key}' already defined")),
        }
    }

    fn merge_literal(&mut self, tree: &mut AttrTree, prefix: &str, set: &ast::AttrSet) {
        for entry in set.entries() {
            match entry {
                ast::Entry::Inherit(inherit) => {
                    for attr in inherit.attrs() {
                        if let Some(name) = static_key(&attr) {
                            self.define(tree, prefix, &[(name, attr.syntax().text_range())], None);
                        }
                    }
                }
                ast::Entry::AttrpathValue(binding) => {
                    let Some(path) = binding.attrpath() else { continue };
                    let keys: Vec<_> = path
                        .attrs()
                        .map_while(|attr| static_key(&attr).map(|k| (k, attr.syntax().text_range())))
                        .collect();
                    if keys.len() == path.attrs().count() {
                        self.define(tree, prefix, &keys, binding.value().as_ref());
                    }
                }
            }
        }
    }

    /// Visits the values of a binding group: in the group's own scope if `recursive` (it was pushed), and the
    /// sources of plain `inherit`s always in the enclosing scope.
    fn binding_values(&mut self, node: &impl HasEntry, scopes: &mut Vec<Scope>, recursive: bool, group: &Group) {
        for entry in node.entries() {
            match entry {
                ast::Entry::Inherit(inherit) => match inherit.from() {
                    Some(from) => {
                        if let Some(expr) = from.expr() {
                            self.expr(&expr, scopes);
                        }
                    }
                    None => {
                        // `inherit x;` reads x from outside the group, even in a let or rec set.
                        let own = if recursive { scopes.pop() } else { None };
                        for attr in inherit.attrs() {
                            if let ast::Attr::Ident(ident) = attr {
                                self.expr(&ast::Expr::Ident(ident), scopes);
                            }
                        }
                        scopes.extend(own);
                    }
                },
                ast::Entry::AttrpathValue(binding) => {
                    let mut extends_rec = None;
                    if let Some(path) = binding.attrpath() {
                        self.attrpath(&path, scopes);
                        // `a.c = v` beside `a = rec { ... }`: v is evaluated inside that rec set (Nix keeps this
                        // for compatibility; NixOS/nix#9020).
                        // The rec literal itself also sees the names merged into it from outside.
                        let first = path.attrs().next().and_then(|a| static_key(&a));
                        extends_rec = first.and_then(|f| group.rec_sets.get(&f)).cloned();
                    }
                    let pushed = extends_rec.is_some();
                    scopes.extend(extends_rec.map(Scope::Names));
                    if let Some(value) = binding.value() {
                        self.expr(&value, scopes);
                    }
                    if pushed {
                        scopes.pop();
                    }
                }
            }
        }
    }
}

/// The name an attribute key stands for when it is known before evaluation.
fn static_key(attr: &ast::Attr) -> Option<String> {
    match attr {
        ast::Attr::Ident(ident) => Some(ident.syntax().text().to_string()),
        ast::Attr::Str(string) => static_string(string),
        ast::Attr::Dynamic(dynamic) => match dynamic.expr()? {
            ast::Expr::Str(string) => static_string(&string),
            _ => None,
        },
    }
}

fn static_string(string: &ast::Str) -> Option<String> {
    let mut text = String::new();
    for part in string.normalized_parts() {
        match part {
            ast::InterpolPart::Literal(literal) => text.push_str(&literal),
            ast::InterpolPart::Interpolation(_) => return None,
        }
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(source: &str) -> String {
        parse(source, "t.nix").expect_err("must not parse").to_string()
    }

    #[test]
    fn nix_parse_time_errors_are_reported_with_their_place() {
        for (source, expected) in [
            ("x: y", "undefined variable 'y'\n       at t.nix:1:4"),
            ("{ a = 1; a = 2; }", "attribute 'a' already defined"),
            ("{ x.z = 3; x = { y = 3; z = 3; }; }", "attribute 'x.z' already defined"),
            ("args@{args, x}: x", "duplicate formal function argument 'args'"),
            ("{a, a}: a", "duplicate formal function argument 'a'"),
            ("let inherit x; in x", "undefined variable 'x'"),
            ("let inherit x; x = 1; in x", "attribute 'x' already defined"),
            ("let x = 1 in x", "syntax error"),
            ("rec { a = 1; b = { inherit c; }; }", "undefined variable 'c'"),
        ] {
            let message = error(source);
            assert!(message.contains(expected), "{source}: {message}");
        }
    }

    #[test]
    fn valid_scoping_parses() {
        for source in [
            "let a = 1; b = a; in b",
            "rec { a = 1; b = a; }",
            "{ x = { y = 1; }; x.z = 2; }",
            "with builtins; foo",
            "{ a ? b, b }: a",
            "let { x = 1; body = x; }",
            "{ ${\"a\"} = 1; b = __add 1 2; }",
            "x: { inherit x; }",
            "let f = x: x; in f true",
            "let s = { a.b = 1; }; in s.a.b or s ? a.${\"b\"}",
            "{ a = rec { b = c + 1; d = 2; }; a.c = d + 3; }",
        ] {
            parse(source, "t.nix").unwrap_or_else(|e| panic!("{source}: {e}"));
        }
    }
}
