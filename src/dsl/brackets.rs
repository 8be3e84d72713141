//! Brackets outside strings and comments, read as the grammar reads them (or erring on the
//! side of seeing a bracket). Used before parsing, to refuse absurd nesting, and after a
//! failed parse, to say which block is left open.

/// Every `{ } [ ] ( )` of `text` outside strings and comments, with its byte offset.
pub(super) fn brackets(text: &str) -> impl Iterator<Item = (u8, usize)> + '_ {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let at = i;
            match bytes[i] {
                b'"' => {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                }
                b'/' if bytes.get(i + 1) == Some(&b'/') => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                b'/' if bytes.get(i + 1) == Some(&b'*') => {
                    i += 2;
                    while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                        i += 1;
                    }
                    i += 1;
                }
                b @ (b'{' | b'}' | b'[' | b']' | b'(' | b')') => {
                    i += 1;
                    return Some((b, at));
                }
                _ => {}
            }
            i += 1;
        }
        None
    })
}

/// Whether `b` opens a bracket.
pub(super) fn is_open(b: u8) -> bool {
    matches!(b, b'{' | b'[' | b'(')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_comments_hide_brackets() {
        let text = "{ \"{[(\" // {\n /* ( */ [ ] }";
        let found: Vec<u8> = brackets(text).map(|(b, _)| b).collect();
        assert_eq!(found, b"{[]}");
    }
}
