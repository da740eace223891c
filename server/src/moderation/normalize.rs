//! Text as the word lists see it, so that a student cannot step around a rule with case,
//! accents, zero-width characters, look-alike letters, digits for letters or spacing: "K í l l",
//! "k\u{200B}ill", "kіll" (a Cyrillic і), "k1ll" and "ｋｉｌｌ" all read `kil` (repeated letters
//! are folded to one, in the text and in the patterns alike).

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// A word of the folded text, and where it came from in the original.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    /// The folded word.
    pub(crate) text: String,
    /// Its bytes in the original text (for a run of single letters, the whole run).
    pub(crate) from: usize,
    pub(crate) to: usize,
}

/// Characters that show nothing: zero-width spaces and joiners, the soft hyphen, the word
/// joiner and invisible operators, the byte-order mark, variation selectors, the combining
/// grapheme joiner, bidi controls.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}' | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}'
        | '\u{FEFF}' | '\u{FFA0}' | '\u{E0000}'..='\u{E007F}')
}

/// A letter that looks like a Latin one (Cyrillic, Greek), or a digit or sign written for one.
fn look_alike(c: char) -> char {
    match c {
        'а' | 'α' | '4' => 'a',
        'в' | 'β' | '8' => 'b',
        'с' | 'ϲ' => 'c',
        'е' | 'ε' | 'ё' | '3' => 'e',
        'һ' => 'h',
        'і' | 'ї' | 'ι' | '1' => 'i',
        'ј' => 'j',
        'к' | 'κ' => 'k',
        'м' => 'm',
        'п' | 'η' => 'n',
        'о' | 'ο' | 'σ' | '0' => 'o',
        'р' | 'ρ' => 'p',
        'ԛ' => 'q',
        'ѕ' | '5' => 's',
        'т' | 'τ' | '7' => 't',
        'υ' | 'ս' => 'u',
        'ν' | 'ѵ' => 'v',
        'ѡ' | 'ω' => 'w',
        'х' | 'χ' => 'x',
        'у' | 'γ' => 'y',
        'ᴢ' | '2' => 'z',
        other => other,
    }
}

/// A sign written for a letter ("k!ll", "$hit"), when a letter or digit follows it: at the end
/// of a word it is punctuation ("now!").
fn sign_for_letter(c: char) -> Option<char> {
    match c {
        '@' => Some('a'),
        '¢' => Some('c'),
        '€' => Some('e'),
        '!' | '|' => Some('i'),
        '$' => Some('s'),
        '+' => Some('t'),
        _ => None,
    }
}

/// The words of `text`, folded: compatibility forms decomposed (full-width, ligatures,
/// superscripts), accents and invisible characters dropped, lower case, look-alikes and
/// digits-for-letters mapped to Latin letters, each run of one letter repeated folded to one,
/// and runs of three or more single letters ("k i l l", "k.i.l.l") joined into one word.
pub(crate) fn tokens(text: &str) -> Vec<Token> {
    let mut words: Vec<Token> = Vec::new();
    let mut current: Option<Token> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let end = at + c.len_utf8();
        let c = match sign_for_letter(c) {
            Some(letter) if chars.peek().is_some_and(|&(_, next)| next.is_alphanumeric()) => letter,
            _ => c,
        };
        let mut letters = String::new();
        for d in std::iter::once(c).nfkd() {
            if is_combining_mark(d) || invisible(d) {
                continue;
            }
            for l in d.to_lowercase() {
                let l = look_alike(l);
                if l.is_alphanumeric() {
                    letters.push(l);
                }
            }
        }
        // An invisible character (or an accent alone) neither ends a word nor adds to it.
        if letters.is_empty() && (invisible(c) || is_combining_mark(c)) {
            if let Some(word) = &mut current {
                word.to = end;
            }
            continue;
        }
        if letters.is_empty() {
            words.extend(current.take());
            continue;
        }
        let word = current.get_or_insert_with(|| Token { text: String::new(), from: at, to: end });
        for l in letters.chars() {
            if !word.text.ends_with(l) {
                word.text.push(l);
            }
        }
        word.to = end;
    }
    words.extend(current);
    join_spelled_out(text, words)
}

/// "k i l l" and "k.i.l.l" are one word: runs of three or more one-letter words with the same
/// separator between each are joined ("k.i.l.l y.o.u" is two words: the space is another
/// separator).
fn join_spelled_out(text: &str, words: Vec<Token>) -> Vec<Token> {
    let single = |t: &Token| t.text.chars().count() == 1;
    let gap = |a: &Token, b: &Token| text.get(a.to..b.from).unwrap_or("");
    let mut out: Vec<Token> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let mut j = i;
        while j < words.len()
            && single(&words[j])
            && (j <= i + 1 || gap(&words[j - 1], &words[j]) == gap(&words[i], &words[i + 1]))
        {
            j += 1;
        }
        if j - i >= 3 {
            let mut joined = Token { text: String::new(), from: words[i].from, to: words[j - 1].to };
            for w in &words[i..j] {
                if !joined.text.ends_with(w.text.as_str()) {
                    joined.text.push_str(&w.text);
                }
            }
            out.push(joined);
            i = j;
        } else {
            out.push(words[i].clone());
            i += 1;
        }
    }
    out
}

/// The folded words of `text` as one string, each word between spaces (" kil myself "): what
/// word patterns are matched against, so a pattern matches whole words only.
pub(crate) fn folded(tokens: &[Token]) -> String {
    let mut s = String::from(" ");
    for t in tokens {
        s.push_str(&t.text);
        s.push(' ');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(text: &str) -> String {
        folded(&tokens(text))
    }

    #[test]
    fn evasions_read_as_the_plain_words() {
        let plain = fold("kill myself");
        assert_eq!(plain, " kil myself ");
        for evasion in [
            "KILL MYSELF",
            "Kíll mysélf",
            "k\u{200B}ill my\u{00AD}self",
            "k\u{0456}ll myself",
            "kill m\u{0443}self",
            "k i l l myself",
            "k.i.l.l myself",
            "k-i-l-l   myself",
            "kiiiiill myyyself",
            "k1ll mys3lf",
            "\u{FF4B}\u{FF49}\u{FF4C}\u{FF4C} myself",
            "k\u{0301}ill myself",
            "kill\u{FE0F} myself!!!",
            "k!ll my$elf",
        ] {
            assert_eq!(fold(evasion), plain, "{evasion:?}");
        }
    }

    #[test]
    fn words_keep_their_boundaries_and_their_place_in_the_original() {
        assert_eq!(fold("skill"), " skil ");
        assert_eq!(fold("a b"), " a b ", "two single letters stay two words");
        let t = tokens("Hi, k i l l!");
        assert_eq!(t.len(), 2);
        assert_eq!(&"Hi, k i l l!"[t[1].from..t[1].to], "k i l l");
        assert_eq!(fold(""), " ");
        assert_eq!(fold("🙂 ok"), " ok ");
    }
}
