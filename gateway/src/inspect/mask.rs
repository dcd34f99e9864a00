//! Masked forms of matched values, for people who need to recognise a finding
//! (`***-**-4399`) without the value itself being printed.

/// Masks a matched value: separators stay, letters and digits become `*`, except the last
/// four when the value has at least eight (so short values are masked whole).
pub fn mask_value(raw: &str) -> String {
    let alnum = raw.chars().filter(|c| c.is_alphanumeric()).count();
    let keep = if alnum >= 8 { 4 } else { 0 };
    let mut seen = 0;
    raw.chars()
        .map(|c| {
            if c.is_alphanumeric() {
                seen += 1;
                if seen > alnum - keep {
                    return c;
                }
                '*'
            } else if c.is_control() {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Masks the digits of every run of digits and separators that holds 7 or more digits:
/// enough to hide an SSN, card or account number in a file name, while `report-2024.pdf`
/// stays readable.
pub(crate) fn mask_digit_runs(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let is_run = |c: char| c.is_ascii_digit() || matches!(c, '-' | ' ' | '.' | '_' | '/');
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let mut j = i;
        while j < chars.len() && is_run(chars[j]) {
            j += 1;
        }
        let run = &chars[i..j];
        let digits = run.iter().filter(|c| c.is_ascii_digit()).count();
        out.extend(run.iter().map(|&c| {
            if digits >= 7 && c.is_ascii_digit() {
                '*'
            } else {
                c
            }
        }));
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_all_but_last_four() {
        assert_eq!(mask_value("536-90-4399"), "***-**-4399");
        assert_eq!(mask_value("4111 1111 1111 1111"), "**** **** **** 1111");
        assert_eq!(mask_value("AB123"), "*****");
    }

    #[test]
    fn masks_identifier_runs_in_names_only() {
        assert_eq!(
            mask_digit_runs("ssn 536-90-4399.txt"),
            "ssn ***-**-****.txt"
        );
        assert_eq!(mask_digit_runs("report-2024.pdf"), "report-2024.pdf");
        assert_eq!(mask_digit_runs("a536904399b"), "a*********b");
    }
}
