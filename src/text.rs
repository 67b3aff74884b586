//! Text that clients chose, made safe to show.
//!
//! Invariant: nothing a client typed can steer a terminal or disguise itself there. A
//! name that holds a control, format, separator, private-use or unassigned character
//! (U+202E RIGHT-TO-LEFT OVERRIDE, U+2028 LINE SEPARATOR, U+FEFF, an escape...) is
//! refused where it is chosen, and any such character that reaches a table anyway (a
//! row written by an older netlab, or by hand) is shown escaped, as `\u{202e}`.

use std::borrow::Cow;
use std::fmt::Write;

use unicode_general_category::{GeneralCategory, get_general_category};

/// Whether `c` can change how a terminal shows what follows it, or shows as nothing,
/// or as anything a font likes: Unicode categories Cc, Cf, Zl, Zp, Co and Cn.
pub fn is_unsafe_on_terminals(c: char) -> bool {
    matches!(
        get_general_category(c),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
    )
}

/// Columns `s` takes on a terminal: 2 for each CJK character or emoji, 0 for a
/// combining accent. Counting chars would misalign every column after such a text.
pub fn columns(s: &str) -> usize {
    console::measure_text_width(s)
}

/// `s` with every character unsafe on terminals written as `\u{...}`, and each
/// backslash doubled so that the escapes cannot be forged; borrowed when nothing
/// needed escaping.
pub fn escape_unsafe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c == '\\' || is_unsafe_on_terminals(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if is_unsafe_on_terminals(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spoofing_characters_are_unsafe_and_letters_are_not() {
        for c in [
            '\u{202E}', '\u{2028}', '\u{2029}', '\u{FEFF}', '\u{1b}', '\0', '\u{E000}',
        ] {
            assert!(is_unsafe_on_terminals(c), "{:x}", u32::from(c));
        }
        // An unassigned code point (Unicode 16 leaves U+0378 empty).
        assert!(is_unsafe_on_terminals('\u{378}'));
        for c in ['a', 'Я', '字', '🦀', ' ', '\u{3000}', 'é', '-'] {
            assert!(!is_unsafe_on_terminals(c), "{c:?}");
        }
    }

    #[test]
    fn escaping_shows_what_was_hidden_and_cannot_be_forged() {
        assert!(matches!(escape_unsafe("Alice"), Cow::Borrowed("Alice")));
        assert_eq!(escape_unsafe("evil\u{202E}gnp.exe"), "evil\\u{202e}gnp.exe");
        assert_eq!(escape_unsafe("a\u{2028}b"), "a\\u{2028}b");
        // A name that spells an escape is not taken for one.
        assert_eq!(escape_unsafe("\\u{202e}"), "\\\\u{202e}");
    }
}
