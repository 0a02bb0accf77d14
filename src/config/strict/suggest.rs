//! "Did you mean": the known field name nearest to a mistyped one.

/// The known field one or two edits away from `key`, if any: a typo, not
/// a different word. Of equals, the one of the same length wins (`modle` is
/// `model` swapped, not `mode` with a letter more), then the first.
pub(super) fn closest<'a>(key: &str, fields: &[&'a str]) -> Option<&'a str> {
    let len = key.chars().count();
    fields
        .iter()
        .map(|field| (edit_distance(key, field), *field))
        .filter(|(distance, _)| *distance <= 2 && *distance < len)
        .min_by_key(|(distance, field)| (*distance, field.chars().count().abs_diff(len)))
        .map(|(_, field)| field)
}

/// Edit distance over characters (optimal string alignment): the fewest
/// insertions, deletions, substitutions and swaps of two neighbours that
/// turn `a` into `b`.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}
