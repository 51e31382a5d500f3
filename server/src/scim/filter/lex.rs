//! The filter lexer: characters → tokens, with the length bound checked first.

use serde_json::{Number, Value};

use super::{FilterError, MAX_FILTER_LEN, err};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
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
    pub(super) fn describe(&self) -> String {
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
pub(super) struct Token {
    pub(super) tok: Tok,
    /// 1-based character position, for error details.
    pub(super) pos: usize,
}

pub(super) fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '$' || c == '_'
}

pub(super) fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '_' | '-' | '$')
}

pub(super) fn check_length(input: &str, what: &str) -> Result<(), FilterError> {
    if input.chars().count() > MAX_FILTER_LEN {
        return err(format!("{what} is longer than {MAX_FILTER_LEN} characters"));
    }
    Ok(())
}

pub(super) fn lex(input: &str) -> Result<Vec<Token>, FilterError> {
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
