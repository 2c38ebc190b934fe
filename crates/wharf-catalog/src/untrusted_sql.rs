//! Reading SQL that comes from outside (the SQL tools) as far as Wharf must:
//! where the statement really ends, and which functions it names.
//!
//! Neither question can be answered with a search in the text: `--` inside a
//! string is not a comment, and `'pg_sleep'` is not a call. This is a lexer
//! for the parts of SQL that matter here (strings, quoted identifiers, dollar
//! quotes, line and block comments), not a parser: the database parses the
//! statement; this only finds its end and its identifiers. On PostgreSQL the
//! functions that act beyond one statement (advisory locks, session settings,
//! files, other servers, notifications, dynamic SQL) are refused by name
//! (SQLite's authorizer does the same job there).

/// A token that matters here.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token<'a> {
    /// An identifier or keyword, unquoted (compared case-insensitively).
    Word(&'a str),
    /// A `"quoted"` identifier, as written between the quotes.
    Quoted(String),
    /// A `U&"…"` identifier: its escapes can spell any name.
    UnicodeQuoted,
    /// Anything else that is not a comment or blank: a literal, punctuation.
    Other,
    /// `;`
    Semicolon,
}

/// The tokens of `sql` and the byte offset where each ends.
fn tokens(sql: &str) -> Vec<(Token<'_>, usize)> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' => i += 1,
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                // PostgreSQL nests block comments; SQLite does not, but a
                // nested opener there only makes this lexer stricter.
                let mut depth = 0usize;
                while i < bytes.len() {
                    if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'\'' => {
                i = skip_quoted(bytes, i, b'\'', false);
                out.push((Token::Other, i));
            }
            b'"' | b'`' | b'[' => {
                let close = match b {
                    b'[' => b']',
                    q => q,
                };
                let start = i + 1;
                i = skip_quoted(bytes, i, close, false);
                // Ends on the closing quote (ASCII), or at the end if unclosed.
                let inner_end = if i > start && bytes[i - 1] == close {
                    i - 1
                } else {
                    i
                };
                let inner = sql[start..inner_end].replace("\"\"", "\"");
                let unicode = out.len() >= 2
                    && matches!(out[out.len() - 2].0, Token::Word(w) if w.eq_ignore_ascii_case("u"))
                    && sql[..start - 1].ends_with('&');
                out.push((
                    if unicode {
                        Token::UnicodeQuoted
                    } else {
                        Token::Quoted(inner)
                    },
                    i,
                ));
            }
            b'$' => {
                if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    // `$1`: a parameter.
                    i += 1;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                } else {
                    // `$tag$ … $tag$` or `$$ … $$`: a dollar-quoted string.
                    let mut e = i + 1;
                    while e < bytes.len() && (bytes[e].is_ascii_alphanumeric() || bytes[e] == b'_')
                    {
                        e += 1;
                    }
                    if e < bytes.len() && bytes[e] == b'$' {
                        let tag = &sql[i..=e];
                        let body = e + 1;
                        i = sql[body..]
                            .find(tag)
                            .map_or(bytes.len(), |p| body + p + tag.len());
                    } else {
                        i += 1;
                    }
                }
                out.push((Token::Other, i));
            }
            b';' => {
                i += 1;
                out.push((Token::Semicolon, i));
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric()
                        || bytes[i] == b'_'
                        || bytes[i] == b'$'
                        || bytes[i] >= 0x80)
                {
                    i += 1;
                }
                // E'…' and friends: a prefix glued to a string; only in an
                // E string does a backslash escape the quote.
                if i < bytes.len() && bytes[i] == b'\'' && i - start <= 2 {
                    let escapes = sql[start..i].eq_ignore_ascii_case("e");
                    i = skip_quoted(bytes, i, b'\'', escapes);
                    out.push((Token::Other, i));
                } else {
                    out.push((Token::Word(&sql[start..i]), i));
                }
            }
            _ => {
                i += 1;
                out.push((Token::Other, i));
            }
        }
    }
    out
}

/// Past the quoted run that opens at `start`: a doubled quote is one quote,
/// and with `escapes` (PostgreSQL's `E'…'`) a backslash escapes the next byte.
/// Elsewhere a backslash is an ordinary character: `'\'` is a whole string.
fn skip_quoted(bytes: &[u8], start: usize, close: u8, escapes: bool) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        if escapes && bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i] == close {
            if bytes.get(i + 1) == Some(&close) && close != b']' {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// The statement without what follows its last significant token: trailing
/// blanks, comments and semicolons (`SELECT 1; -- why` is `SELECT 1`), so it
/// can be wrapped in another statement.
pub(crate) fn statement_body(sql: &str) -> &str {
    let end = tokens(sql)
        .iter()
        .rev()
        .find(|(t, _)| *t != Token::Semicolon)
        .map_or(0, |(_, end)| *end);
    &sql[..end]
}

/// Whether a statement goes on after a `;` (a second statement).
pub(crate) fn has_several_statements(sql: &str) -> bool {
    let t = tokens(sql);
    let Some(first_semicolon) = t.iter().position(|(t, _)| *t == Token::Semicolon) else {
        return false;
    };
    t[first_semicolon..]
        .iter()
        .any(|(t, _)| *t != Token::Semicolon)
}

/// PostgreSQL functions untrusted SQL may not call: what outlives the statement
/// (advisory locks, session settings, notifications), reaches beyond the
/// database (files, large objects, other servers), controls the server, or
/// runs SQL from a string (which would escape this check).
const PG_REFUSED: &[&str] = &[
    "set_config",
    "pg_notify",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_promote",
    "pg_switch_wal",
    "pg_create_restore_point",
    "pg_logical_emit_message",
    "pg_stat_file",
    "pg_export_snapshot",
    "query_to_xml",
    "query_to_xml_and_xmlschema",
    "query_to_xmlschema",
    "cursor_to_xml",
    "cursor_to_xmlschema",
    "ts_stat",
    "ts_rewrite",
    "lo_import",
    "lo_export",
    "lo_get",
    "lo_put",
    "lo_create",
    "lo_creat",
    "lo_unlink",
    "lo_from_bytea",
    "lo_open",
    "lo_close",
    "lo_read",
    "lo_write",
    "lo_lseek",
    "lo_lseek64",
    "lo_tell",
    "lo_tell64",
    "lo_truncate",
    "lo_truncate64",
];

/// Prefixes of refused PostgreSQL functions (families).
const PG_REFUSED_PREFIXES: &[&str] = &[
    "pg_advisory_",
    "pg_try_advisory_",
    "pg_sleep",
    "pg_read_",
    "pg_ls_",
    "pg_file_",
    "pg_stat_reset",
    "pg_create_",
    "pg_drop_",
    "pg_replication_",
    "dblink",
    "database_to_xml",
    "schema_to_xml",
    "table_to_xml",
];

/// The first refused PostgreSQL function `sql` names, if any (as written, for
/// the message). Every identifier counts, called or not: a name alone is no
/// loss, and `"pg_sleep"(1)` or `pg_catalog.pg_sleep(1)` call just the same.
pub(crate) fn refused_pg_function(sql: &str) -> Option<String> {
    tokens(sql).into_iter().find_map(|(t, _)| {
        let name = match t {
            Token::Word(w) => w.to_ascii_lowercase(),
            Token::Quoted(q) => q,
            Token::UnicodeQuoted => return Some("U&\"…\" (write the name plainly)".to_owned()),
            _ => return None,
        };
        let refused = PG_REFUSED.contains(&name.as_str())
            || PG_REFUSED_PREFIXES.iter().any(|p| name.starts_with(p));
        refused.then_some(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_ends_before_trailing_comments_and_semicolons() {
        assert_eq!(statement_body("SELECT 1"), "SELECT 1");
        assert_eq!(statement_body("SELECT 1; -- why\n"), "SELECT 1");
        assert_eq!(statement_body("SELECT 1 /* a */ ;; "), "SELECT 1");
        assert_eq!(
            statement_body("SELECT '--not a comment' -- but this is"),
            "SELECT '--not a comment'"
        );
        assert_eq!(statement_body("SELECT $$;--$$"), "SELECT $$;--$$");
        assert_eq!(statement_body("SELECT $1 -- param"), "SELECT $1");
        assert!(!has_several_statements("SELECT 1; -- only one"));
        assert!(has_several_statements("SELECT 1; SELECT 2"));
        assert!(!has_several_statements("SELECT ';SELECT 2'"));
    }

    #[test]
    fn refused_functions_are_found_however_they_are_written() {
        for sql in [
            "SELECT pg_advisory_lock(1)",
            "select PG_SLEEP(10)",
            "SELECT pg_catalog.pg_sleep(1)",
            "SELECT \"pg_sleep\"(1)",
            "SELECT set_config('default_transaction_read_only','off',false)",
            "SELECT query_to_xml('select pg_advisory_lock(1)', true, true, '')",
            "SELECT * FROM dblink('host=x', 'select 1') AS t(a int)",
            "SELECT lo_import('/etc/passwd')",
            "SELECT pg_read_file('/etc/passwd')",
            "SELECT '\\', pg_sleep(10) --'",
            "SELECT U&\"pg_\\0073leep\"(1)",
            "SELECT * FROM ts_stat('select pg_advisory_lock(1)::text::tsvector')",
        ] {
            assert!(refused_pg_function(sql).is_some(), "{sql}");
        }
        for sql in [
            "SELECT 'pg_sleep(1)'",
            "SELECT 1 -- pg_advisory_lock(1)",
            "SELECT count(*) FROM items WHERE title = $1",
            "SELECT $x$pg_sleep$x$",
            "SELECT current_setting('work_mem')",
            "SELECT E'\\' pg_sleep(1)'",
        ] {
            assert_eq!(refused_pg_function(sql), None, "{sql}");
        }
    }
}
