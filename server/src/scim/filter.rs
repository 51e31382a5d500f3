//! The SCIM filter language (RFC 7644 §3.4.2.2): a parser into an AST, PATCH path parsing
//! (RFC 7644 §3.5.2) and an evaluator over SCIM JSON resources.
//!
//! The parser is bounded: inputs longer than [`MAX_FILTER_LEN`] characters or nested deeper than
//! [`MAX_DEPTH`] levels of `(`, `not (` or `[` are rejected before any deep recursion, so a hostile
//! query string gives an `invalidFilter` error, never a stack overflow.
//!
//! Evaluation semantics chosen where the RFC leaves room (the integrator should know these):
//! - a multi-valued attribute matches when ANY of its values matches;
//! - a complex attribute compared without a sub-attribute (`emails co "x"`, `members eq "id"`,
//!   `manager eq "id"`) is compared through its `value` sub-attribute;
//! - `ne` is the negation of `eq` over all values, so `ne` on a missing attribute is true;
//! - `eq null` is true when the attribute has no value, `ne null` when it has one;
//! - booleans only support `eq`/`ne`; `gt`, `co`, ... on a boolean are false (and [`validate`]
//!   reports them if the caller prefers a 400);
//! - values of different JSON types never match; dateTime attributes compare as instants;
//! - strings compare case-insensitively unless the schema says `caseExact` (unknown and custom
//!   extension attributes: case-insensitive).

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Number, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::schema::{AttrType, AttributeDef, ResourceKind, resolve};

/// Longest filter (or PATCH path, or attribute list) accepted, in characters.
pub const MAX_FILTER_LEN: usize = 4096;
/// Deepest nesting of parentheses, `not (...)` and `[...]` accepted.
pub const MAX_DEPTH: usize = 32;

/// A malformed filter or path; `Display` is a human-readable detail for a SCIM error body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, FilterError> {
    Err(FilterError(msg.into()))
}

/// An attribute reference: `[urn:]attr[.sub]`. The spelling is kept as sent; every comparison
/// with schema names or JSON keys ignores case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrPath {
    pub urn: Option<String>,
    pub attr: String,
    pub sub: Option<String>,
}

impl AttrPath {
    pub fn new(attr: impl Into<String>) -> Self {
        AttrPath {
            urn: None,
            attr: attr.into(),
            sub: None,
        }
    }

    pub fn with_urn(urn: impl Into<String>, attr: impl Into<String>) -> Self {
        AttrPath {
            urn: Some(urn.into()),
            attr: attr.into(),
            sub: None,
        }
    }

    pub fn with_sub(mut self, sub: impl Into<String>) -> Self {
        self.sub = Some(sub.into());
        self
    }

    /// True when the path names the core schema: no URN, or the core schema's URN.
    pub fn is_core(&self, kind: ResourceKind) -> bool {
        self.urn.as_deref().is_none_or(|u| kind.is_core_urn(u))
    }

    /// Whether this path is `urn:attr.sub` (urn `None` = core schema), ignoring case and treating
    /// the core schema URN as equal to no URN. Handy when translating filters into queries.
    pub fn refers_to(
        &self,
        kind: ResourceKind,
        urn: Option<&str>,
        attr: &str,
        sub: Option<&str>,
    ) -> bool {
        let same_urn = match (self.is_core(kind), urn) {
            (true, None) => true,
            (true, Some(u)) => kind.is_core_urn(u),
            (false, None) => false,
            (false, Some(u)) => self
                .urn
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case(u)),
        };
        let same_sub = match (&self.sub, sub) {
            (None, None) => true,
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        };
        same_urn && same_sub && self.attr.eq_ignore_ascii_case(attr)
    }

    /// The schema definition this path names, if it is a known attribute.
    pub fn def(&self, kind: ResourceKind) -> Option<&'static AttributeDef> {
        resolve(kind, self.urn.as_deref(), &self.attr, self.sub.as_deref())
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.urn {
            write!(f, "{u}:")?;
        }
        write!(f, "{}", self.attr)?;
        if let Some(s) = &self.sub {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    pub fn parse(s: &str) -> Option<CompareOp> {
        Some(match s.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    fn is_ordering(self) -> bool {
        matches!(
            self,
            CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
        )
    }

    fn is_substring(self) -> bool {
        matches!(self, CompareOp::Co | CompareOp::Sw | CompareOp::Ew)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: Value,
    },
    Present(AttrPath),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `path[filter]`: inside `filter`, attribute names are sub-attributes of `path`.
    ValuePath {
        path: AttrPath,
        filter: Box<Filter>,
    },
}

impl fmt::Display for Filter {
    /// Writes the filter back in SCIM syntax, fully parenthesised so that it re-parses to the
    /// same tree (useful in logs and error details).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Compare { path, op, value } => write!(f, "{path} {} {value}", op.as_str()),
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::And(a, b) => write!(f, "({a} and {b})"),
            Filter::Or(a, b) => write!(f, "({a} or {b})"),
            Filter::Not(a) => write!(f, "not ({a})"),
            Filter::ValuePath { path, filter } => write!(f, "{path}[{filter}]"),
        }
    }
}

/// A parsed PATCH `path` (RFC 7644 §3.5.2): `attr`, `attr.sub`, `urn:attr[.sub]`,
/// `attr[filter]` or `attr[filter].sub`. `attr.sub` is only set when there is no filter; after a
/// filter the sub-attribute is in `sub_after_filter`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    pub sub_after_filter: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Dot,
    Word(String),
    Str(String),
    Num(Number),
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::LBracket => "'['".into(),
            Tok::RBracket => "']'".into(),
            Tok::Dot => "'.'".into(),
            Tok::Word(w) => format!("'{w}'"),
            Tok::Str(s) => format!("string {}", Value::String(s.clone())),
            Tok::Num(n) => format!("number {n}"),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// 1-based character position, for error details.
    pos: usize,
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '$' || c == '_'
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '_' | '-' | '$')
}

fn check_length(input: &str, what: &str) -> Result<(), FilterError> {
    if input.chars().count() > MAX_FILTER_LEN {
        return err(format!("{what} is longer than {MAX_FILTER_LEN} characters"));
    }
    Ok(())
}

fn lex(input: &str) -> Result<Vec<Token>, FilterError> {
    let chars: Vec<(usize, char)> = input.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (byte, c) = chars[i];
        let pos = i + 1;
        let single = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            '.' => Some(Tok::Dot),
            _ => None,
        };
        if let Some(tok) = single {
            out.push(Token { tok, pos });
            i += 1;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '"' {
            let mut j = i + 1;
            let mut escaped = false;
            let end = loop {
                let Some(&(_, d)) = chars.get(j) else {
                    return err(format!("unterminated string starting at position {pos}"));
                };
                match (escaped, d) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => break j,
                    _ => {}
                }
                j += 1;
            };
            let end_byte = chars[end].0 + 1;
            let s: String = serde_json::from_str(&input[byte..end_byte])
                .map_err(|_| FilterError(format!("invalid string literal at position {pos}")))?;
            out.push(Token {
                tok: Tok::Str(s),
                pos,
            });
            i = end + 1;
            continue;
        }
        if c == '-' || c.is_ascii_digit() {
            let mut j = i + 1;
            while let Some(&(_, d)) = chars.get(j) {
                if d.is_ascii_digit() || matches!(d, '.' | 'e' | 'E' | '+' | '-') {
                    j += 1;
                } else {
                    break;
                }
            }
            let end_byte = chars.get(j).map_or(input.len(), |&(b, _)| b);
            let text = &input[byte..end_byte];
            let n: Number = serde_json::from_str(text)
                .map_err(|_| FilterError(format!("invalid number '{text}' at position {pos}")))?;
            out.push(Token {
                tok: Tok::Num(n),
                pos,
            });
            i = j;
            continue;
        }
        if is_word_start(c) {
            let mut j = i + 1;
            while chars.get(j).is_some_and(|&(_, d)| is_word_char(d)) {
                j += 1;
            }
            let end_byte = chars.get(j).map_or(input.len(), |&(b, _)| b);
            out.push(Token {
                tok: Tok::Word(input[byte..end_byte].to_string()),
                pos,
            });
            i = j;
            continue;
        }
        return err(format!("unexpected character '{c}' at position {pos}"));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Attribute paths

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(is_word_start)
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '$'))
}

/// Parses `[urn:]attr[.sub]`. The URN is everything before the last `:`, so any extension URN
/// works, including Entra's `urn:ietf:params:scim:schemas:extension:<Name>:2.0:User:<attr>`.
pub fn parse_attr_path(text: &str) -> Result<AttrPath, FilterError> {
    let text = text.trim();
    check_length(text, "attribute path")?;
    let (urn, rest) = match text.rfind(':') {
        Some(i) => (Some(&text[..i]), &text[i + 1..]),
        None => (None, text),
    };
    if let Some(u) = urn {
        let lower = u.to_ascii_lowercase();
        if !lower.starts_with("urn:") || u.len() <= 4 || u.ends_with(':') {
            return err(format!("invalid schema URN in attribute path '{text}'"));
        }
    }
    let (attr, sub) = match rest.split_once('.') {
        Some((a, s)) => (a, Some(s)),
        None => (rest, None),
    };
    if !valid_name(attr) {
        return err(format!("invalid attribute name in '{text}'"));
    }
    if let Some(s) = sub
        && !valid_name(s)
    {
        return err(format!("invalid sub-attribute name in '{text}'"));
    }
    Ok(AttrPath {
        urn: urn.map(str::to_string),
        attr: attr.to_string(),
        sub: sub.map(str::to_string),
    })
}

// ---------------------------------------------------------------------------------------------
// Parser

struct Parser {
    toks: Vec<Token>,
    i: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|t| &t.tok)
    }

    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.i + n).map(|t| &t.tok)
    }

    fn pos(&self) -> usize {
        self.toks.get(self.i).map_or(0, |t| t.pos)
    }

    fn bump(&mut self) -> Option<Token> {
        let t = self.toks.get(self.i).cloned();
        self.i += 1;
        t
    }

    fn peek_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn expect(&mut self, want: Tok, what: &str) -> Result<(), FilterError> {
        match self.bump() {
            Some(t) if t.tok == want => Ok(()),
            Some(t) => err(format!(
                "expected {what} at position {}, found {}",
                t.pos,
                t.tok.describe()
            )),
            None => err(format!("expected {what}, found the end of the filter")),
        }
    }

    fn enter(depth: usize) -> Result<usize, FilterError> {
        if depth >= MAX_DEPTH {
            return err(format!("filter is nested deeper than {MAX_DEPTH} levels"));
        }
        Ok(depth + 1)
    }

    fn parse_or(&mut self, depth: usize, in_brackets: bool) -> Result<Filter, FilterError> {
        let mut left = self.parse_and(depth, in_brackets)?;
        while self.peek_keyword("or") {
            self.bump();
            let right = self.parse_and(depth, in_brackets)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_and(&mut self, depth: usize, in_brackets: bool) -> Result<Filter, FilterError> {
        let mut left = self.parse_unary(depth, in_brackets)?;
        while self.peek_keyword("and") {
            self.bump();
            let right = self.parse_unary(depth, in_brackets)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_unary(&mut self, depth: usize, in_brackets: bool) -> Result<Filter, FilterError> {
        match self.peek() {
            Some(Tok::LParen) => {
                let depth = Self::enter(depth)?;
                self.bump();
                let inner = self.parse_or(depth, in_brackets)?;
                self.expect(Tok::RParen, "')'")?;
                Ok(inner)
            }
            // RFC 7644 requires the parentheses after `not`; without them `not` is an attribute.
            Some(Tok::Word(w))
                if w.eq_ignore_ascii_case("not") && self.peek_at(1) == Some(&Tok::LParen) =>
            {
                let depth = Self::enter(depth)?;
                self.bump();
                self.bump();
                let inner = self.parse_or(depth, in_brackets)?;
                self.expect(Tok::RParen, "')'")?;
                Ok(Filter::Not(Box::new(inner)))
            }
            Some(Tok::Word(_)) => self.parse_attr_exp(depth, in_brackets),
            Some(other) => err(format!(
                "expected an attribute name or '(' at position {}, found {}",
                self.pos(),
                other.describe()
            )),
            None => err("unexpected end of filter: an expression is missing"),
        }
    }

    fn parse_attr_exp(&mut self, depth: usize, in_brackets: bool) -> Result<Filter, FilterError> {
        let Some(Token {
            tok: Tok::Word(word),
            pos,
        }) = self.bump()
        else {
            return err("expected an attribute name");
        };
        let path =
            parse_attr_path(&word).map_err(|e| FilterError(format!("{e} (at position {pos})")))?;
        match self.peek() {
            Some(Tok::LBracket) => {
                if in_brackets {
                    return err(format!(
                        "a value filter cannot contain another value filter (position {})",
                        self.pos()
                    ));
                }
                if path.sub.is_some() {
                    return err(format!(
                        "a value filter must follow an attribute, not a sub-attribute ('{word}')"
                    ));
                }
                let depth = Self::enter(depth)?;
                self.bump();
                let inner = self.parse_or(depth, true)?;
                self.expect(Tok::RBracket, "']'")?;
                if self.peek() == Some(&Tok::Dot) {
                    // Not in RFC 7644's grammar, but Microsoft Entra ID sends it when the
                    // matching attribute is an email: `emails[type eq "work"].value eq "x"`
                    // means `emails[type eq "work" and value eq "x"]`.
                    self.bump();
                    let sub = match self.bump() {
                        Some(Token {
                            tok: Tok::Word(w), ..
                        }) => w,
                        _ => return err("expected a sub-attribute name after '].'"),
                    };
                    let test = match self.bump() {
                        Some(Token {
                            tok: Tok::Word(op_word),
                            pos,
                        }) => {
                            if op_word.eq_ignore_ascii_case("pr") {
                                Filter::Present(AttrPath::new(sub))
                            } else {
                                let Some(op) = CompareOp::parse(&op_word) else {
                                    return err(format!(
                                        "unknown operator '{op_word}' at position {pos}"
                                    ));
                                };
                                let value = self.parse_value(&op_word)?;
                                Filter::Compare {
                                    path: AttrPath::new(sub),
                                    op,
                                    value,
                                }
                            }
                        }
                        _ => return err(format!("expected an operator after '].{sub}'")),
                    };
                    return Ok(Filter::ValuePath {
                        path,
                        filter: Box::new(Filter::And(Box::new(inner), Box::new(test))),
                    });
                }
                Ok(Filter::ValuePath {
                    path,
                    filter: Box::new(inner),
                })
            }
            Some(Tok::Word(op_word)) => {
                let op_word = op_word.clone();
                let op_pos = self.pos();
                self.bump();
                if op_word.eq_ignore_ascii_case("pr") {
                    return Ok(Filter::Present(path));
                }
                let Some(op) = CompareOp::parse(&op_word) else {
                    return err(format!("unknown operator '{op_word}' at position {op_pos}"));
                };
                let value = self.parse_value(&op_word)?;
                Ok(Filter::Compare { path, op, value })
            }
            Some(other) => err(format!(
                "expected an operator after '{word}' at position {}, found {}",
                self.pos(),
                other.describe()
            )),
            None => err(format!("expected an operator after '{word}'")),
        }
    }

    fn parse_value(&mut self, op: &str) -> Result<Value, FilterError> {
        match self.bump() {
            Some(Token {
                tok: Tok::Str(s), ..
            }) => Ok(Value::String(s)),
            Some(Token {
                tok: Tok::Num(n), ..
            }) => Ok(Value::Number(n)),
            Some(Token {
                tok: Tok::Word(w), ..
            }) if w.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Some(Token {
                tok: Tok::Word(w), ..
            }) if w.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            Some(Token {
                tok: Tok::Word(w), ..
            }) if w.eq_ignore_ascii_case("null") => Ok(Value::Null),
            Some(t) => err(format!(
                "expected a value (a quoted string, a number, true, false or null) after '{op}' at position {}, found {}",
                t.pos,
                t.tok.describe()
            )),
            None => err(format!("expected a value after '{op}'")),
        }
    }

    fn expect_end(&self) -> Result<(), FilterError> {
        match self.toks.get(self.i) {
            None => Ok(()),
            Some(t) => err(format!(
                "unexpected {} at position {}",
                t.tok.describe(),
                t.pos
            )),
        }
    }
}

/// Parses a `filter` query parameter (already URL-decoded).
pub fn parse_filter(input: &str) -> Result<Filter, FilterError> {
    check_length(input, "filter")?;
    let toks = lex(input)?;
    if toks.is_empty() {
        return err("filter is empty");
    }
    let mut p = Parser { toks, i: 0 };
    let f = p.parse_or(0, false)?;
    p.expect_end()?;
    Ok(f)
}

/// Parses a PATCH operation's `path`.
pub fn parse_patch_path(input: &str) -> Result<PatchPath, FilterError> {
    check_length(input, "path")?;
    let toks = lex(input)?;
    let mut p = Parser { toks, i: 0 };
    let Some(Token {
        tok: Tok::Word(word),
        ..
    }) = p.bump()
    else {
        return err(format!("'{input}' is not a valid attribute path"));
    };
    let attr = parse_attr_path(&word)?;
    let mut path = PatchPath {
        attr,
        filter: None,
        sub_after_filter: None,
    };
    if p.peek() == Some(&Tok::LBracket) {
        if path.attr.sub.is_some() {
            return err(format!(
                "a value filter must follow an attribute, not a sub-attribute ('{word}')"
            ));
        }
        p.bump();
        let inner = p.parse_or(1, true)?;
        p.expect(Tok::RBracket, "']'")?;
        path.filter = Some(inner);
        if p.peek() == Some(&Tok::Dot) {
            p.bump();
            match p.bump() {
                Some(Token {
                    tok: Tok::Word(sub),
                    ..
                }) if valid_name(&sub) => path.sub_after_filter = Some(sub),
                _ => {
                    return err(format!(
                        "expected a sub-attribute name after '].' in '{input}'"
                    ));
                }
            }
        }
    }
    p.expect_end()?;
    Ok(path)
}

/// Reports attribute/operator combinations that can never match, for callers that prefer
/// answering 400 `invalidFilter` over an empty result: ordering or substring operators on
/// booleans, and comparisons of complex attributes that have no `value` sub-attribute
/// (`name eq "x"`). `matches` itself simply treats these as false.
pub fn validate(filter: &Filter, kind: ResourceKind) -> Result<(), FilterError> {
    validate_in(filter, kind, None)
}

fn validate_in(
    filter: &Filter,
    kind: ResourceKind,
    parent: Option<&'static AttributeDef>,
) -> Result<(), FilterError> {
    let def_of = |path: &AttrPath| match parent {
        None => path.def(kind),
        Some(p) => p.sub(&path.attr),
    };
    match filter {
        Filter::And(a, b) | Filter::Or(a, b) => {
            validate_in(a, kind, parent)?;
            validate_in(b, kind, parent)
        }
        Filter::Not(a) => validate_in(a, kind, parent),
        Filter::Present(_) => Ok(()),
        Filter::ValuePath { path, filter } => validate_in(filter, kind, def_of(path)),
        Filter::Compare { path, op, .. } => {
            let Some(mut def) = def_of(path) else {
                return Ok(());
            };
            if def.is_complex() {
                match def.sub("value") {
                    Some(v) => def = v,
                    None => {
                        return err(format!(
                            "'{path}' is a complex attribute: compare one of its sub-attributes"
                        ));
                    }
                }
            }
            if def.ty == AttrType::Boolean && (op.is_ordering() || op.is_substring()) {
                return err(format!(
                    "'{path}' is a boolean: only 'eq' and 'ne' apply, not '{}'",
                    op.as_str()
                ));
            }
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// Key lookup that ignores case, preferring an exact match (RFC 7643 §2.1).
pub(super) fn key_ci<'m>(map: &'m Map<String, Value>, name: &str) -> Option<&'m String> {
    if let Some((k, _)) = map.get_key_value(name) {
        return Some(k);
    }
    map.keys().find(|k| k.eq_ignore_ascii_case(name))
}

pub(super) fn get_ci<'v>(v: &'v Value, name: &str) -> Option<&'v Value> {
    let map = v.as_object()?;
    key_ci(map, name).and_then(|k| map.get(k))
}

/// Booleans may be stored or sent as `"True"`/`"false"` strings (Entra does this).
pub(super) fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn as_datetime(v: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(v.as_str()?, &Rfc3339).ok()
}

/// Present in the `pr` sense: not missing, null, `""`, `[]` or `{}`.
pub(super) fn is_present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(is_present),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

#[derive(Clone, Copy)]
enum Scope<'a> {
    /// A whole resource: top-level core attributes, extensions under their URN key.
    Resource(&'a Value, ResourceKind),
    /// One value of a multi-valued attribute, inside `attr[...]`.
    Element(&'a Value, Option<&'static AttributeDef>),
}

/// Evaluates `filter` against a full SCIM resource as JSON (core attributes at the top level,
/// extension attributes in an object under the extension URN; keys in any case).
pub fn matches(filter: &Filter, resource: &Value, kind: ResourceKind) -> bool {
    eval(filter, Scope::Resource(resource, kind))
}

/// Evaluates a value filter (the inside of `emails[...]`) against one value of the multi-valued
/// attribute `parent`. PATCH uses this to pick the values a path targets.
pub fn matches_value(
    filter: &Filter,
    element: &Value,
    parent: Option<&'static AttributeDef>,
) -> bool {
    eval(filter, Scope::Element(element, parent))
}

fn eval(filter: &Filter, scope: Scope<'_>) -> bool {
    match filter {
        // Long `a and b and c ...` chains are left-deep trees; walking the left spine in a loop
        // keeps the recursion depth bounded by the parser's nesting limit.
        Filter::And(..) => {
            let mut f = filter;
            while let Filter::And(left, right) = f {
                if !eval(right, scope) {
                    return false;
                }
                f = left;
            }
            eval(f, scope)
        }
        Filter::Or(..) => {
            let mut f = filter;
            while let Filter::Or(left, right) = f {
                if eval(right, scope) {
                    return true;
                }
                f = left;
            }
            eval(f, scope)
        }
        Filter::Not(inner) => !eval(inner, scope),
        Filter::Present(path) => lookup(scope, path).0.into_iter().any(is_present),
        Filter::Compare { path, op, value } => compare_path(scope, path, *op, value),
        Filter::ValuePath { path, filter } => {
            let (values, def) = lookup(scope, path);
            values
                .into_iter()
                .any(|el| eval(filter, Scope::Element(el, def)))
        }
    }
}

fn push_flat<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Null => {}
        Value::Array(items) => out.extend(items.iter().filter(|x| !x.is_null())),
        other => out.push(other),
    }
}

fn collect<'a>(container: Option<&'a Value>, attr: &str, sub: Option<&str>) -> Vec<&'a Value> {
    let mut out = Vec::new();
    let Some(v) = container.and_then(|c| get_ci(c, attr)) else {
        return out;
    };
    match sub {
        None => push_flat(v, &mut out),
        Some(s) => {
            let mut parents = Vec::new();
            push_flat(v, &mut parents);
            for p in parents {
                if let Some(x) = get_ci(p, s) {
                    push_flat(x, &mut out);
                }
            }
        }
    }
    out
}

/// The container holding a path's attribute: the resource itself for core attributes, the
/// extension object for URN-qualified ones.
fn container_for<'a>(res: &'a Value, kind: ResourceKind, path: &AttrPath) -> Option<&'a Value> {
    match &path.urn {
        None => Some(res),
        Some(u) if kind.is_core_urn(u) => Some(res),
        Some(u) => get_ci(res, u),
    }
}

/// The values a path refers to (multi-valued attributes flattened) and their definition.
fn lookup<'a>(
    scope: Scope<'a>,
    path: &AttrPath,
) -> (Vec<&'a Value>, Option<&'static AttributeDef>) {
    match scope {
        Scope::Resource(res, kind) => {
            let container = container_for(res, kind, path);
            (
                collect(container, &path.attr, path.sub.as_deref()),
                path.def(kind),
            )
        }
        Scope::Element(el, parent) => {
            let def = parent.and_then(|p| p.sub(&path.attr));
            let def = match &path.sub {
                None => def,
                Some(s) => def.and_then(|d| d.sub(s)),
            };
            // A multi-valued attribute of plain values: `value` is the value itself.
            if !el.is_object() {
                let own = path.attr.eq_ignore_ascii_case("value") && path.sub.is_none();
                return (if own { vec![el] } else { Vec::new() }, def);
            }
            (collect(Some(el), &path.attr, path.sub.as_deref()), def)
        }
    }
}

fn compare_path(scope: Scope<'_>, path: &AttrPath, op: CompareOp, rhs: &Value) -> bool {
    let (values, def) = lookup(scope, path);
    let mut leaves = Vec::new();
    for v in values {
        if v.is_object() {
            if let Some(x) = get_ci(v, "value") {
                push_flat(x, &mut leaves);
            }
        } else {
            leaves.push(v);
        }
    }
    let leaf_def = match def {
        Some(d) if d.is_complex() => d.sub("value"),
        other => other,
    };
    if rhs.is_null() {
        let any = leaves.iter().any(|v| is_present(v));
        return match op {
            CompareOp::Eq => !any,
            CompareOp::Ne => any,
            _ => false,
        };
    }
    match op {
        CompareOp::Ne => !leaves
            .iter()
            .any(|v| compare(v, leaf_def, CompareOp::Eq, rhs)),
        _ => leaves.iter().any(|v| compare(v, leaf_def, op, rhs)),
    }
}

fn ordering_holds(op: CompareOp, ord: Option<Ordering>) -> bool {
    let Some(ord) = ord else {
        return false;
    };
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

fn number_cmp(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

fn compare(leaf: &Value, def: Option<&AttributeDef>, op: CompareOp, rhs: &Value) -> bool {
    let ty = def.map(|d| d.ty);
    if ty == Some(AttrType::Boolean) || leaf.is_boolean() || rhs.is_boolean() {
        let (Some(a), Some(b)) = (as_bool(leaf), as_bool(rhs)) else {
            return false;
        };
        return match op {
            CompareOp::Eq => a == b,
            CompareOp::Ne => a != b,
            _ => false,
        };
    }
    if let (Value::Number(a), Value::Number(b)) = (leaf, rhs) {
        return ordering_holds(op, number_cmp(a, b));
    }
    if ty == Some(AttrType::DateTime)
        && !op.is_substring()
        && let (Some(a), Some(b)) = (as_datetime(leaf), as_datetime(rhs))
    {
        return ordering_holds(op, Some(a.cmp(&b)));
    }
    let (Value::String(a), Value::String(b)) = (leaf, rhs) else {
        return false;
    };
    if def.is_some_and(|d| d.case_exact) {
        string_op(op, a, b)
    } else {
        string_op(op, &a.to_lowercase(), &b.to_lowercase())
    }
}

fn string_op(op: CompareOp, a: &str, b: &str) -> bool {
    match op {
        CompareOp::Co => a.contains(b),
        CompareOp::Sw => a.starts_with(b),
        CompareOp::Ew => a.ends_with(b),
        _ => ordering_holds(op, Some(a.cmp(b))),
    }
}

/// A value to order resources by (`sortBy`). Values of different kinds order as
/// booleans < numbers < dates < strings, so a mixed column still sorts deterministically.
#[derive(Debug, Clone)]
pub enum SortKey {
    Bool(bool),
    Number(f64),
    DateTime(OffsetDateTime),
    /// Already lower-cased when the attribute is not `caseExact`.
    String(String),
}

impl SortKey {
    fn rank(&self) -> u8 {
        match self {
            SortKey::Bool(_) => 0,
            SortKey::Number(_) => 1,
            SortKey::DateTime(_) => 2,
            SortKey::String(_) => 3,
        }
    }
}

impl Ord for SortKey {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (SortKey::Bool(a), SortKey::Bool(b)) => a.cmp(b),
            (SortKey::Number(a), SortKey::Number(b)) => a.total_cmp(b),
            (SortKey::DateTime(a), SortKey::DateTime(b)) => a.cmp(b),
            (SortKey::String(a), SortKey::String(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for SortKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for SortKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for SortKey {}

/// The key to sort `resource` by `path`, or `None` when it has no value (RFC 7644 §3.4.2.3 sorts
/// those last in ascending order; the caller places them). Multi-valued attributes sort by their
/// primary value, else the first; a complex attribute without sub-attribute by its `value`.
pub fn sort_key(resource: &Value, path: &AttrPath, kind: ResourceKind) -> Option<SortKey> {
    let container = container_for(resource, kind, path)?;
    let attr = get_ci(container, &path.attr)?;
    let element = match attr {
        Value::Array(items) => items
            .iter()
            .find(|v| get_ci(v, "primary").and_then(as_bool) == Some(true))
            .or_else(|| items.first())?,
        other => other,
    };
    let def = path.def(kind);
    let (leaf, def) = match &path.sub {
        Some(s) => (get_ci(element, s)?, def),
        None if element.is_object() => {
            (get_ci(element, "value")?, def.and_then(|d| d.sub("value")))
        }
        None => (element, def),
    };
    let ty = def.map(|d| d.ty);
    match leaf {
        Value::Bool(b) => Some(SortKey::Bool(*b)),
        Value::Number(n) => n.as_f64().map(SortKey::Number),
        Value::String(s) => {
            if ty == Some(AttrType::DateTime)
                && let Some(t) = as_datetime(leaf)
            {
                return Some(SortKey::DateTime(t));
            }
            if ty == Some(AttrType::Boolean)
                && let Some(b) = as_bool(leaf)
            {
                return Some(SortKey::Bool(b));
            }
            if def.is_some_and(|d| d.case_exact) {
                Some(SortKey::String(s.clone()))
            } else {
                Some(SortKey::String(s.to_lowercase()))
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User";

    fn p(s: &str) -> Filter {
        match parse_filter(s) {
            Ok(f) => f,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    fn perr(s: &str) -> String {
        match parse_filter(s) {
            Ok(f) => panic!("{s:?} should not parse, got {f:?}"),
            Err(e) => e.0,
        }
    }

    fn cmp(path: AttrPath, op: CompareOp, value: Value) -> Filter {
        Filter::Compare { path, op, value }
    }

    fn and(a: Filter, b: Filter) -> Filter {
        Filter::And(Box::new(a), Box::new(b))
    }

    fn or(a: Filter, b: Filter) -> Filter {
        Filter::Or(Box::new(a), Box::new(b))
    }

    fn pr(attr: &str) -> Filter {
        Filter::Present(AttrPath::new(attr))
    }

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "BJensen",
            "userName": "Bjensen@Example.com",
            "name": {"familyName": "O'Malley", "givenName": "Barbara"},
            "displayName": "Babs Jensen",
            "title": "Tour Guide",
            "userType": "Employee",
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "ims": [{"value": "babs@foo.com", "type": "xmpp"}],
            "x-count": 7,
            "meta": {
                "resourceType": "User",
                "created": "2010-01-23T04:56:22Z",
                "lastModified": "2011-05-13T04:42:34Z"
            },
            ENT: {
                "employeeNumber": "701984",
                "Department": "Tour Operations",
                "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
            },
            CUSTOM: {"badgeColor": "Blue", "floor": 3}
        })
    }

    fn m(filter: &str, resource: &Value) -> bool {
        matches(&p(filter), resource, ResourceKind::User)
    }

    // --- parsing: the RFC 7644 §3.4.2.2 examples -----------------------------------------

    #[test]
    fn rfc_examples_parse() {
        for f in [
            r#"userName eq "bjensen""#,
            r#"name.familyName co "O'Malley""#,
            r#"userName sw "J""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            "title pr",
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
            r#"title pr and userType eq "Employee""#,
            r#"title pr or userType eq "Intern""#,
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType eq "Employee" and (emails.type eq "work")"#,
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        ] {
            p(f);
        }
    }

    #[test]
    fn simple_equality_tree() {
        assert_eq!(
            p(r#"userName eq "bjensen""#),
            cmp(AttrPath::new("userName"), CompareOp::Eq, json!("bjensen"))
        );
    }

    #[test]
    fn sub_attribute_path() {
        assert_eq!(
            p(r#"name.familyName co "O'Malley""#),
            cmp(
                AttrPath::new("name").with_sub("familyName"),
                CompareOp::Co,
                json!("O'Malley")
            )
        );
    }

    #[test]
    fn core_urn_is_split_at_last_colon() {
        let f = p(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#);
        assert_eq!(
            f,
            cmp(
                AttrPath::with_urn("urn:ietf:params:scim:schemas:core:2.0:User", "userName"),
                CompareOp::Sw,
                json!("J")
            )
        );
    }

    #[test]
    fn enterprise_urn_with_sub_attribute() {
        let f = p(&format!(r#"{ENT}:manager.value eq "x""#));
        assert_eq!(
            f,
            cmp(
                AttrPath::with_urn(ENT, "manager").with_sub("value"),
                CompareOp::Eq,
                json!("x")
            )
        );
    }

    #[test]
    fn custom_extension_urn() {
        let f = p(&format!(r#"{CUSTOM}:badgeColor eq "blue""#));
        assert_eq!(
            f,
            cmp(
                AttrPath::with_urn(CUSTOM, "badgeColor"),
                CompareOp::Eq,
                json!("blue")
            )
        );
    }

    #[test]
    fn precedence_and_binds_tighter_than_or() {
        assert_eq!(
            p("a pr or b pr and c pr"),
            or(pr("a"), and(pr("b"), pr("c")))
        );
        assert_eq!(
            p("a pr and b pr or c pr"),
            or(and(pr("a"), pr("b")), pr("c"))
        );
    }

    #[test]
    fn precedence_not_binds_tighter_than_and() {
        assert_eq!(
            p("not (a pr) and b pr"),
            and(Filter::Not(Box::new(pr("a"))), pr("b"))
        );
    }

    #[test]
    fn parentheses_override_precedence() {
        assert_eq!(
            p("(a pr or b pr) and c pr"),
            and(or(pr("a"), pr("b")), pr("c"))
        );
    }

    #[test]
    fn chains_are_left_associative() {
        assert_eq!(
            p("a pr and b pr and c pr"),
            and(and(pr("a"), pr("b")), pr("c"))
        );
        assert_eq!(p("a pr or b pr or c pr"), or(or(pr("a"), pr("b")), pr("c")));
    }

    #[test]
    fn operators_and_keywords_ignore_case() {
        assert_eq!(p(r#"userName EQ "x""#), p(r#"userName eq "x""#));
        assert_eq!(p("title PR"), pr("title"));
        assert_eq!(p("a pr AND b pr Or c pr"), p("a pr and b pr or c pr"));
        assert_eq!(p("NOT (a pr)"), Filter::Not(Box::new(pr("a"))));
        assert_eq!(
            p("active eq TRUE"),
            cmp(AttrPath::new("active"), CompareOp::Eq, json!(true))
        );
        assert_eq!(
            p("active eq False"),
            cmp(AttrPath::new("active"), CompareOp::Eq, json!(false))
        );
        assert_eq!(
            p("title eq NULL"),
            cmp(AttrPath::new("title"), CompareOp::Eq, Value::Null)
        );
    }

    #[test]
    fn every_comparison_operator() {
        for (s, op) in [
            ("eq", CompareOp::Eq),
            ("ne", CompareOp::Ne),
            ("co", CompareOp::Co),
            ("sw", CompareOp::Sw),
            ("ew", CompareOp::Ew),
            ("gt", CompareOp::Gt),
            ("ge", CompareOp::Ge),
            ("lt", CompareOp::Lt),
            ("le", CompareOp::Le),
        ] {
            assert_eq!(
                p(&format!("x {s} 1")),
                cmp(AttrPath::new("x"), op, json!(1))
            );
            assert_eq!(CompareOp::parse(&s.to_uppercase()), Some(op));
            assert_eq!(op.as_str(), s);
        }
    }

    #[test]
    fn value_path_tree() {
        let f = p(r#"emails[type eq "work" and value co "@example.com"]"#);
        assert_eq!(
            f,
            Filter::ValuePath {
                path: AttrPath::new("emails"),
                filter: Box::new(and(
                    cmp(AttrPath::new("type"), CompareOp::Eq, json!("work")),
                    cmp(AttrPath::new("value"), CompareOp::Co, json!("@example.com"))
                ))
            }
        );
    }

    #[test]
    fn literals() {
        assert_eq!(
            p(r#"x eq "a\"b""#),
            cmp(AttrPath::new("x"), CompareOp::Eq, json!("a\"b"))
        );
        assert_eq!(
            p(r#"x eq "caf\u00e9""#),
            cmp(AttrPath::new("x"), CompareOp::Eq, json!("café"))
        );
        assert_eq!(
            p(r#"x eq "back\\slash""#),
            cmp(AttrPath::new("x"), CompareOp::Eq, json!("back\\slash"))
        );
        assert_eq!(
            p("x gt -1.5e3"),
            cmp(AttrPath::new("x"), CompareOp::Gt, json!(-1500.0))
        );
        assert_eq!(
            p("x lt 42"),
            cmp(AttrPath::new("x"), CompareOp::Lt, json!(42))
        );
        assert_eq!(
            p(r#"x eq "ünïcödé""#),
            cmp(AttrPath::new("x"), CompareOp::Eq, json!("ünïcödé"))
        );
    }

    #[test]
    fn whitespace_is_flexible() {
        assert_eq!(p("  (a pr)and(b pr)  "), and(pr("a"), pr("b")));
        assert_eq!(p("userName\teq\t\"x\""), p(r#"userName eq "x""#));
        assert_eq!(
            p(r#"emails[ type eq "work" ]"#),
            p(r#"emails[type eq "work"]"#)
        );
    }

    #[test]
    fn entra_test_connection_filter() {
        let f = p(r#"userName eq "a7c2f3c4-83b5-4b0b-9d21-0d1c1f0f6f0e""#);
        assert!(!matches(&f, &user(), ResourceKind::User));
    }

    #[test]
    fn dollar_ref_is_an_attribute_name() {
        assert_eq!(
            p(r#"members.$ref eq "x""#),
            cmp(
                AttrPath::new("members").with_sub("$ref"),
                CompareOp::Eq,
                json!("x")
            )
        );
    }

    #[test]
    fn display_round_trips() {
        for f in [
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp"]"#,
            &format!(r#"{ENT}:manager.value eq "a\"b" and x gt 1.5 and y eq null and z eq true"#),
        ] {
            let tree = p(f);
            assert_eq!(p(&tree.to_string()), tree, "{f}");
        }
    }

    // --- parsing errors -------------------------------------------------------------------

    #[test]
    fn malformed_filters_are_errors() {
        for f in [
            "",
            "   ",
            "(",
            ")",
            "(a pr",
            "a pr)",
            "((a pr)",
            "(a pr))",
            "a xx 1",
            "a equals 1",
            r#"userName eq "unterminated"#,
            r#"userName eq ""#,
            "a pr b",
            "a pr b pr",
            r#"userName eq "x" junk"#,
            "a eq",
            "a",
            r#"eq "x""#,
            "a eq bareword",
            "a pr and",
            "a pr or",
            "and a pr",
            "a pr and or b pr",
            "not a pr",
            "not (a pr",
            "not ()",
            "()",
            r#"emails[type eq "work""#,
            r#"emails[type eq "work"]]"#,
            r#"emails[type eq "work"].value"#,
            r#"emails[ims[type eq "x"]]"#,
            r#"name.givenName[type eq "x"]"#,
            r#"emails[]"#,
            r#"foo:bar eq "x""#,
            r#"urn:x: eq "x""#,
            r#"name..x eq "x""#,
            r#"name.a.b eq "x""#,
            r#"x eq "\q""#,
            "x eq 01",
            "x eq 1.2.3",
            "x eq -",
            "x eq 1e",
            r#"x eq 'single'"#,
            "x eq #",
            r#"x = "y""#,
            r#"userName eq "a" &"#,
            "1 eq 1",
            r#""a" eq "a""#,
            "a pr [",
            "a pr .b",
        ] {
            let e = perr(f);
            assert!(!e.is_empty(), "{f:?}");
        }
    }

    #[test]
    fn errors_are_specific() {
        assert!(perr("(a pr").contains("')'"));
        assert!(perr("a xx 1").contains("unknown operator 'xx'"));
        assert!(perr(r#"x eq "abc"#).contains("unterminated string"));
        assert!(perr("a pr b").contains("unexpected 'b'"));
        assert!(perr(r#"emails[type eq "work"].value"#).contains("operator"));
        assert!(perr("a eq bareword").contains("expected a value"));
    }

    #[test]
    fn entra_email_matching_filter_is_a_value_filter() {
        let f = parse_filter(r#"emails[type eq "work"].value eq "A@x.com""#).unwrap();
        let user = serde_json::json!({"emails": [
            {"type": "home", "value": "a@x.com"},
            {"type": "work", "value": "a@x.com"}
        ]});
        assert!(matches(&f, &user, ResourceKind::User));
        let other = serde_json::json!({"emails": [{"type": "home", "value": "a@x.com"}]});
        assert!(!matches(&f, &other, ResourceKind::User));
    }

    #[test]
    fn too_long_is_rejected() {
        let long = format!(r#"userName eq "{}""#, "a".repeat(MAX_FILTER_LEN));
        assert!(perr(&long).contains("longer than"));
        let just_fits = format!(r#"x eq "{}""#, "a".repeat(MAX_FILTER_LEN - 7));
        assert_eq!(just_fits.chars().count(), MAX_FILTER_LEN);
        p(&just_fits);
    }

    #[test]
    fn nesting_limit() {
        let ok = format!("{}a pr{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert_eq!(p(&ok), pr("a"));
        let deep = format!(
            "{}a pr{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert!(perr(&deep).contains("nested deeper"));
        let nots = format!(
            "{}a pr{}",
            "not (".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert!(perr(&nots).contains("nested deeper"));
        // Thousands of unbalanced '(' must fail on depth, not overflow the stack.
        let huge = "(".repeat(4000);
        assert!(perr(&huge).contains("nested deeper"));
    }

    #[test]
    fn long_flat_chains_do_not_overflow() {
        let mut f = String::from("a pr");
        while f.len() + 9 <= MAX_FILTER_LEN {
            f.push_str(" and a pr");
        }
        let tree = p(&f);
        assert!(matches(&tree, &json!({"a": 1}), ResourceKind::User));
        assert!(!matches(&tree, &json!({"b": 1}), ResourceKind::User));
        let ors = f.replace(" and ", " or ");
        assert!(matches(&p(&ors), &json!({"a": 1}), ResourceKind::User));
    }

    /// A small deterministic generator: garbage made of filter characters must never panic.
    #[test]
    fn random_garbage_never_panics() {
        let alphabet: Vec<char> = "ab.:[]()\" \\-1eE0$_notandorpreqco\u{e9}\tu"
            .chars()
            .collect();
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..5000 {
            let mut s = String::new();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 40) as usize;
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                s.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            let _ = parse_filter(&s);
            let _ = parse_patch_path(&s);
            let _ = parse_attr_path(&s);
        }
    }

    #[test]
    fn every_prefix_of_valid_filters_is_handled() {
        let full = r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"] or not (x gt 1.5e2)"#;
        for (i, _) in full.char_indices() {
            let _ = parse_filter(&full[..i]);
            let _ = parse_patch_path(&full[..i]);
        }
        p(full);
    }

    // --- attribute paths ------------------------------------------------------------------

    #[test]
    fn attr_path_forms() {
        assert_eq!(parse_attr_path("userName"), Ok(AttrPath::new("userName")));
        assert_eq!(
            parse_attr_path(" name.givenName "),
            Ok(AttrPath::new("name").with_sub("givenName"))
        );
        assert_eq!(
            parse_attr_path(&format!("{ENT}:department")),
            Ok(AttrPath::with_urn(ENT, "department"))
        );
        assert!(parse_attr_path("").is_err());
        assert!(parse_attr_path("a b").is_err());
        assert!(parse_attr_path("9abc").is_err());
        assert!(parse_attr_path("urn:").is_err());
        assert!(parse_attr_path("name.").is_err());
    }

    #[test]
    fn attr_path_helpers() {
        let core = AttrPath::with_urn("URN:ietf:params:scim:schemas:core:2.0:user", "USERNAME");
        assert!(core.is_core(ResourceKind::User));
        assert!(core.refers_to(ResourceKind::User, None, "userName", None));
        assert!(!core.refers_to(ResourceKind::User, Some(ENT), "userName", None));
        let mgr = AttrPath::with_urn(ENT, "Manager").with_sub("Value");
        assert!(!mgr.is_core(ResourceKind::User));
        assert!(mgr.refers_to(
            ResourceKind::User,
            Some(&ENT.to_uppercase()),
            "manager",
            Some("value")
        ));
        assert!(!mgr.refers_to(ResourceKind::User, Some(ENT), "manager", None));
        assert_eq!(mgr.def(ResourceKind::User).map(|d| d.name), Some("value"));
        assert_eq!(mgr.to_string(), format!("{ENT}:Manager.Value"));
    }

    // --- PATCH paths ----------------------------------------------------------------------

    #[test]
    fn patch_path_plain_and_sub() {
        let pp = parse_patch_path("name.givenName").expect("parses");
        assert_eq!(pp.attr, AttrPath::new("name").with_sub("givenName"));
        assert!(pp.filter.is_none());
        assert!(pp.sub_after_filter.is_none());
        let pp = parse_patch_path("active").expect("parses");
        assert_eq!(pp.attr, AttrPath::new("active"));
    }

    #[test]
    fn patch_path_with_filter() {
        let pp = parse_patch_path(r#"members[value eq "2819c223"]"#).expect("parses");
        assert_eq!(pp.attr, AttrPath::new("members"));
        assert_eq!(
            pp.filter,
            Some(cmp(
                AttrPath::new("value"),
                CompareOp::Eq,
                json!("2819c223")
            ))
        );
        assert_eq!(pp.sub_after_filter, None);
    }

    #[test]
    fn patch_path_with_filter_and_sub() {
        let pp = parse_patch_path(r#"emails[type eq "work"].value"#).expect("parses");
        assert_eq!(pp.attr, AttrPath::new("emails"));
        assert_eq!(
            pp.filter,
            Some(cmp(AttrPath::new("type"), CompareOp::Eq, json!("work")))
        );
        assert_eq!(pp.sub_after_filter.as_deref(), Some("value"));
    }

    #[test]
    fn patch_path_enterprise() {
        let pp = parse_patch_path(&format!("{ENT}:manager")).expect("parses");
        assert_eq!(pp.attr, AttrPath::with_urn(ENT, "manager"));
        let pp = parse_patch_path(&format!("{ENT}:manager.value")).expect("parses");
        assert_eq!(
            pp.attr,
            AttrPath::with_urn(ENT, "manager").with_sub("value")
        );
        let pp = parse_patch_path(&format!("{CUSTOM}:badgeColor")).expect("parses");
        assert_eq!(pp.attr, AttrPath::with_urn(CUSTOM, "badgeColor"));
    }

    #[test]
    fn patch_path_rfc_examples() {
        for path in [
            "members",
            "name.familyName",
            r#"addresses[type eq "work"]"#,
            r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#,
            r#"members[value eq "2819c223-7f76-453a-919d-413861904646"].displayName"#,
            r#"emails[type eq "work" and value ew "example.com"]"#,
            r#"addresses[type eq "work"].streetAddress"#,
        ] {
            assert!(parse_patch_path(path).is_ok(), "{path}");
        }
    }

    #[test]
    fn malformed_patch_paths() {
        for path in [
            "",
            "[type eq \"x\"]",
            "emails[",
            r#"emails[type eq "work""#,
            r#"emails[type eq "work"]."#,
            r#"emails[type eq "work"].value.x"#,
            r#"emails[type eq "work"]value"#,
            r#"emails[type eq "work"] and x"#,
            r#"name.givenName[type eq "x"]"#,
            "emails[type]",
            "a b",
            "\"userName\"",
            "(userName)",
            "foo:bar",
        ] {
            assert!(parse_patch_path(path).is_err(), "{path}");
        }
    }

    // --- evaluation -----------------------------------------------------------------------

    #[test]
    fn user_name_is_case_insensitive() {
        let u = user();
        assert!(m(r#"userName eq "bjensen@example.com""#, &u));
        assert!(m(r#"USERNAME EQ "BJENSEN@EXAMPLE.COM""#, &u));
        assert!(!m(r#"userName eq "bjensen""#, &u));
    }

    #[test]
    fn case_exact_attributes() {
        let u = user();
        assert!(m(r#"externalId eq "BJensen""#, &u));
        assert!(!m(r#"externalId eq "bjensen""#, &u));
        assert!(m(r#"id eq "2819c223-7f76-453a-919d-413861904646""#, &u));
        assert!(!m(r#"id eq "2819C223-7F76-453A-919D-413861904646""#, &u));
    }

    #[test]
    fn unknown_attributes_compare_case_insensitively() {
        let u = json!({"nickname2": "Babs"});
        assert!(matches(
            &p(r#"nickname2 eq "BABS""#),
            &u,
            ResourceKind::User
        ));
    }

    #[test]
    fn json_keys_match_in_any_case() {
        let u = json!({"USERNAME": "x", "Emails": [{"VALUE": "a@b.c", "Type": "work"}]});
        assert!(matches(&p(r#"userName eq "x""#), &u, ResourceKind::User));
        assert!(matches(
            &p(r#"emails[type eq "WORK"]"#),
            &u,
            ResourceKind::User
        ));
        assert!(matches(
            &p(r#"emails.value eq "a@b.c""#),
            &u,
            ResourceKind::User
        ));
    }

    #[test]
    fn string_operators() {
        let u = user();
        assert!(m(r#"name.familyName co "malley""#, &u));
        assert!(m(r#"userName sw "BJ""#, &u));
        assert!(!m(r#"userName sw "jensen""#, &u));
        assert!(m(r#"userName ew ".COM""#, &u));
        assert!(m(r#"title gt "A""#, &u));
        assert!(m(r#"title lt "z""#, &u));
        assert!(m(r#"title ge "tour guide""#, &u));
        assert!(m(r#"title le "tour guide""#, &u));
        assert!(!m(r#"title gt "tour guide""#, &u));
    }

    #[test]
    fn rfc_example_semantics() {
        let u = user();
        assert!(m("title pr", &u));
        assert!(m(r#"title pr and userType eq "Employee""#, &u));
        assert!(m(r#"title pr or userType eq "Intern""#, &u));
        assert!(m(
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            &u
        ));
        assert!(m(
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            &u
        ));
        assert!(!m(
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            &u
        ));
        assert!(m(
            r#"userType eq "Employee" and (emails.type eq "work")"#,
            &u
        ));
        assert!(m(
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            &u
        ));
        assert!(m(
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
            &u
        ));
    }

    #[test]
    fn value_filter_requires_one_value_to_match_all_terms() {
        let u = user();
        // The home email is at jensen.org; the work one at example.com: no single value has both.
        assert!(!m(
            r#"emails[type eq "home" and value co "example.com"]"#,
            &u
        ));
        assert!(m(r#"emails[type eq "home" and value co "jensen.org"]"#, &u));
        assert!(m(r#"emails[not (type eq "work")]"#, &u));
        assert!(!m(r#"ims[type eq "aim"]"#, &u));
        assert!(!m(r#"phoneNumbers[type eq "work"]"#, &u));
    }

    #[test]
    fn complex_multi_valued_without_sub_uses_value() {
        let u = user();
        assert!(m(r#"emails eq "BABS@jensen.org""#, &u));
        assert!(m(r#"emails co "jensen""#, &u));
        assert!(!m(r#"emails eq "work""#, &u));
    }

    #[test]
    fn datetimes_compare_as_instants() {
        let u = user();
        assert!(m(r#"meta.lastModified eq "2011-05-13T06:42:34+02:00""#, &u));
        assert!(m(r#"meta.lastModified ge "2011-05-13T04:42:34Z""#, &u));
        assert!(m(r#"meta.lastModified le "2011-05-13T04:42:34Z""#, &u));
        assert!(!m(r#"meta.lastModified gt "2011-05-13T04:42:34Z""#, &u));
        assert!(!m(r#"meta.lastModified lt "2011-05-13T04:42:34Z""#, &u));
        assert!(m(r#"meta.lastModified gt "2011-05-13T04:42:33.5Z""#, &u));
        assert!(m(r#"meta.created lt "2010-01-23T05:00:00+00:00""#, &u));
        // Offsets are honoured: 01:00 at +02:00 is 23:00 the previous day in UTC.
        assert!(m(r#"meta.lastModified gt "2011-05-13T01:00:00+02:00""#, &u));
        assert!(m(r#"meta.created sw "2010-01""#, &u));
    }

    #[test]
    fn booleans() {
        let u = user();
        assert!(m("active eq true", &u));
        assert!(!m("active eq false", &u));
        assert!(m("active ne false", &u));
        assert!(m(r#"active eq "True""#, &u));
        assert!(!m("active gt false", &u));
        assert!(!m(r#"active co "t""#, &u));
        let stored_as_string = json!({"active": "False"});
        assert!(matches(
            &p("active eq false"),
            &stored_as_string,
            ResourceKind::User
        ));
    }

    #[test]
    fn validate_flags_boolean_ordering_and_bare_complex() {
        assert!(validate(&p("active gt false"), ResourceKind::User).is_err());
        assert!(validate(&p(r#"active co "t""#), ResourceKind::User).is_err());
        assert!(validate(&p(r#"name eq "x""#), ResourceKind::User).is_err());
        assert!(validate(&p(r#"emails[primary gt true]"#), ResourceKind::User).is_err());
        assert!(validate(&p("active eq false"), ResourceKind::User).is_ok());
        assert!(validate(&p(r#"emails co "x" and nonsense gt 1"#), ResourceKind::User).is_ok());
        assert!(validate(&p(r#"members eq "x""#), ResourceKind::Group).is_ok());
    }

    #[test]
    fn presence() {
        let u = user();
        assert!(m("emails pr", &u));
        assert!(m("name pr", &u));
        assert!(m("name.givenName pr", &u));
        assert!(!m("name.middleName pr", &u));
        assert!(!m("nickName pr", &u));
        assert!(m(&format!("{ENT}:manager pr"), &u));
        let empty = json!({"title": "", "emails": [], "name": {}, "nickName": null});
        for f in ["title pr", "emails pr", "name pr", "nickName pr"] {
            assert!(!matches(&p(f), &empty, ResourceKind::User), "{f}");
        }
    }

    #[test]
    fn not_equal_and_null() {
        let u = user();
        assert!(m(r#"nickName ne "x""#, &u));
        assert!(m(r#"title ne "x""#, &u));
        assert!(!m(r#"title ne "TOUR GUIDE""#, &u));
        assert!(m("nickName eq null", &u));
        assert!(!m("title eq null", &u));
        assert!(m("title ne null", &u));
        assert!(!m("nickName ne null", &u));
        assert!(!m("title gt null", &u));
        // ne over a multi-valued attribute: true only when no value equals.
        assert!(!m(r#"emails.type ne "home""#, &u));
        assert!(m(r#"emails.type ne "other""#, &u));
    }

    #[test]
    fn not_negates() {
        let u = user();
        assert!(m(r#"not (userName eq "nobody")"#, &u));
        assert!(!m(r#"not (userName pr)"#, &u));
        assert!(m(r#"not (not (userName pr))"#, &u));
    }

    #[test]
    fn mismatched_types_never_match() {
        let u = user();
        assert!(!m("userName eq 5", &u));
        assert!(!m(r#"x-count eq "7""#, &u));
        assert!(!m("title eq true", &u));
        assert!(!m(r#"name eq "Barbara""#, &u));
    }

    #[test]
    fn numbers() {
        let u = user();
        assert!(m("x-count eq 7", &u));
        assert!(m("x-count eq 7.0", &u));
        assert!(m("x-count gt 6.5", &u));
        assert!(m("x-count le 7", &u));
        assert!(!m("x-count lt -1", &u));
        assert!(!m("x-count co 7", &u));
    }

    #[test]
    fn enterprise_extension_attributes() {
        let u = user();
        assert!(m(&format!(r#"{ENT}:department eq "tour operations""#), &u));
        assert!(m(
            &format!(r#"{}:DEPARTMENT eq "Tour Operations""#, ENT.to_uppercase()),
            &u
        ));
        assert!(m(&format!(r#"{ENT}:employeeNumber eq "701984""#), &u));
        assert!(m(
            &format!(r#"{ENT}:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d""#),
            &u
        ));
        assert!(m(
            &format!(r#"{ENT}:manager eq "26118915-6090-4610-87e4-49d8ca9f808d""#),
            &u
        ));
        assert!(m(&format!(r#"{ENT}:manager.displayName co "smith""#), &u));
        // Unqualified extension attributes are not looked up in the extension.
        assert!(!m(r#"department eq "Tour Operations""#, &u));
    }

    #[test]
    fn custom_extension_attributes() {
        let u = user();
        assert!(m(&format!(r#"{CUSTOM}:badgeColor eq "blue""#), &u));
        assert!(m(&format!(r#"{CUSTOM}:floor ge 3"#), &u));
        assert!(!m(&format!(r#"{CUSTOM}:missing pr"#), &u));
        assert!(!m(
            r#"urn:ietf:params:scim:schemas:extension:Other:2.0:User:badgeColor pr"#,
            &u
        ));
    }

    #[test]
    fn core_urn_prefix_is_the_top_level() {
        let u = user();
        assert!(m(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "b""#,
            &u
        ));
        assert!(m(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:name.givenName eq "barbara""#,
            &u
        ));
    }

    #[test]
    fn group_membership_filters() {
        let g = json!({
            "id": "g1",
            "displayName": "Sales",
            "members": [{"value": "u1", "display": "A"}, {"value": "u2"}]
        });
        let gm = |f: &str| matches(&p(f), &g, ResourceKind::Group);
        assert!(gm(r#"id eq "g1" and members eq "u2""#));
        assert!(!gm(r#"id eq "g1" and members eq "u3""#));
        assert!(gm(r#"members[value eq "u1"]"#));
        assert!(!gm(r#"members[value eq "U1"]"#));
        assert!(gm(r#"displayName eq "sales""#));
        assert!(gm(r#"members.value eq "u1""#));
    }

    #[test]
    fn value_filter_on_plain_values() {
        let r = json!({"tags": ["red", "Blue"]});
        assert!(matches(
            &p(r#"tags[value eq "blue"]"#),
            &r,
            ResourceKind::User
        ));
        assert!(matches(&p(r#"tags eq "RED""#), &r, ResourceKind::User));
        assert!(!matches(
            &p(r#"tags[value eq "green"]"#),
            &r,
            ResourceKind::User
        ));
    }

    #[test]
    fn matches_value_on_one_element() {
        let f = p(r#"type eq "work""#);
        let emails = resolve(ResourceKind::User, None, "emails", None);
        assert!(matches_value(
            &f,
            &json!({"type": "WORK", "value": "x"}),
            emails
        ));
        assert!(!matches_value(&f, &json!({"type": "home"}), emails));
        assert!(!matches_value(&f, &json!("work"), emails));
    }

    #[test]
    fn non_object_resources_match_nothing() {
        for r in [json!(null), json!([1, 2]), json!("userName")] {
            assert!(!matches(&p("userName pr"), &r, ResourceKind::User));
            assert!(matches(&p(r#"userName ne "x""#), &r, ResourceKind::User));
        }
    }

    /// One resource, many filters, the expected answer for each.
    #[test]
    fn evaluation_table() {
        let u = user();
        let cases: &[(&str, bool)] = &[
            (r#"userName eq "bjensen@example.com""#, true),
            (r#"userName ne "bjensen@example.com""#, false),
            (r#"userName co "JENSEN""#, true),
            (r#"userName sw "x""#, false),
            (r#"userName ew "com""#, true),
            (r#"userName gt "a""#, true),
            (r#"userName lt "a""#, false),
            (r#"displayName eq "babs jensen""#, true),
            (
                r#"name.givenName eq "Barbara" and name.familyName co "mal""#,
                true,
            ),
            (
                r#"name.givenName eq "Barbara" and name.familyName co "xyz""#,
                false,
            ),
            (r#"name.givenName eq "x" or name.familyName sw "o'""#, true),
            (r#"not (name.givenName eq "x") and active eq true"#, true),
            (
                r#"(userType eq "Employee" or userType eq "Intern") and active eq true"#,
                true,
            ),
            (
                r#"userType eq "Employee" or userType eq "Intern" and active eq false"#,
                true,
            ),
            (
                r#"(userType eq "Employee" or userType eq "Intern") and active eq false"#,
                false,
            ),
            (r#"emails[type eq "work"]"#, true),
            (r#"emails[type eq "work" and primary eq true]"#, true),
            (r#"emails[type eq "home" and primary eq true]"#, false),
            (r#"emails[primary pr]"#, true),
            (r#"emails[display pr]"#, false),
            (r#"emails[value ew ".org"] and ims[value co "foo"]"#, true),
            (r#"emails.primary eq true"#, true),
            (r#"emails.value sw "babs""#, true),
            (r#"ims.type eq "XMPP""#, true),
            (r#"meta.resourceType eq "User""#, true),
            (r#"meta.resourceType eq "user""#, false),
            (r#"meta.created lt "2010-01-23T04:56:23Z""#, true),
            (r#"meta.created gt "2010-01-23T04:56:22Z""#, false),
            (r#"meta.created eq "2010-01-23T04:56:22.000Z""#, true),
            (r#"meta.created eq "not a date""#, false),
            (r#"externalId sw "BJ""#, true),
            (r#"externalId sw "bj""#, false),
            (r#"id pr"#, true),
            (r#"password pr"#, false),
            (r#"x-count ge 7 and x-count le 7"#, true),
            (r#"x-count ne 7"#, false),
            (r#"x-count ne 8"#, true),
            (
                r#"schemas eq "URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER""#,
                true,
            ),
            (r#"schemas co "enterprise""#, true),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber gt "7""#,
                true,
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber lt "8""#,
                true,
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department pr"#,
                true,
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter pr"#,
                false,
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter ne "x""#,
                true,
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User:badgeColor co "LU""#,
                true,
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:customext:2.0:user:BADGECOLOR eq "blue""#,
                true,
            ),
            (
                r#"active eq true and emails[type eq "work"] and urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value pr"#,
                true,
            ),
            (
                r#"nickName eq "x" or nickName pr or not (nickName pr)"#,
                true,
            ),
        ];
        for (f, expected) in cases {
            assert_eq!(m(f, &u), *expected, "{f}");
        }
    }

    // --- sorting --------------------------------------------------------------------------

    #[test]
    fn sort_keys_order_strings_case_insensitively() {
        let a = json!({"userName": "alice"});
        let b = json!({"userName": "Bob"});
        let path = AttrPath::new("userName");
        let ka = sort_key(&a, &path, ResourceKind::User);
        let kb = sort_key(&b, &path, ResourceKind::User);
        assert!(ka < kb);
        assert_eq!(kb, Some(SortKey::String("bob".into())));
    }

    #[test]
    fn sort_keys_keep_case_for_case_exact() {
        let a = json!({"externalId": "a"});
        let b = json!({"externalId": "B"});
        let path = AttrPath::new("externalId");
        let ka = sort_key(&a, &path, ResourceKind::User).expect("key");
        let kb = sort_key(&b, &path, ResourceKind::User).expect("key");
        assert!(kb < ka, "uppercase sorts first in a case-exact comparison");
    }

    #[test]
    fn sort_keys_use_primary_then_first() {
        let u = user();
        let k = sort_key(&u, &AttrPath::new("emails"), ResourceKind::User);
        assert_eq!(k, Some(SortKey::String("bjensen@example.com".into())));
        let k = sort_key(
            &u,
            &AttrPath::new("emails").with_sub("type"),
            ResourceKind::User,
        );
        assert_eq!(k, Some(SortKey::String("work".into())));
        let no_primary = json!({"emails": [{"value": "Z@x"}, {"value": "a@x"}]});
        let k = sort_key(
            &no_primary,
            &AttrPath::new("emails").with_sub("value"),
            ResourceKind::User,
        );
        assert_eq!(k, Some(SortKey::String("z@x".into())));
    }

    #[test]
    fn sort_keys_dates_numbers_missing() {
        let early = json!({"meta": {"lastModified": "2020-01-01T10:00:00+05:00"}});
        let late = json!({"meta": {"lastModified": "2020-01-01T06:00:00Z"}});
        let path = AttrPath::new("meta").with_sub("lastModified");
        let ke = sort_key(&early, &path, ResourceKind::User).expect("key");
        let kl = sort_key(&late, &path, ResourceKind::User).expect("key");
        assert!(ke < kl, "05:00Z is before 06:00Z");
        assert!(matches!(ke, SortKey::DateTime(_)));
        assert_eq!(sort_key(&json!({}), &path, ResourceKind::User), None);
        assert!(SortKey::Number(2.0) < SortKey::Number(10.0));
        assert!(SortKey::Number(1e9) < SortKey::String("0".into()));
        let ext = sort_key(
            &user(),
            &AttrPath::with_urn(ENT, "department"),
            ResourceKind::User,
        );
        assert_eq!(ext, Some(SortKey::String("tour operations".into())));
        let active = sort_key(
            &json!({"active": "True"}),
            &AttrPath::new("active"),
            ResourceKind::User,
        );
        assert_eq!(active, Some(SortKey::Bool(true)));
    }
}
