//! The filter and path parser: tokens → [`Filter`], [`AttrPath`], [`PatchPath`], with the nesting
//! bound; and [`validate`], which reports comparisons that can never match.

use serde_json::Value;

use super::lex::{Tok, Token, check_length, is_word_start, lex};
use super::{AttrPath, CompareOp, Filter, FilterError, MAX_DEPTH, PatchPath, err};
use crate::scim::schema::{AttrType, AttributeDef, ResourceKind};

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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::*;
    use super::*;
    use serde_json::json;

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
}
