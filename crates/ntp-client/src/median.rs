//! The median of a sorted slice, for the sources' offsets (the bias
//! reference, the spread of the combined sources) and a reference
//! clock's recent dispersions. Not from an RFC: RFC 5905 takes no
//! medians; these are this crate's robust references.

/// The middle of a sorted slice: its middle element for an odd count, the
/// two middle ones, lower first, for an even count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Middle<'a, T> {
    /// The middle element of an odd count.
    One(&'a T),
    /// The two middle elements of an even count, lower first.
    Two(&'a T, &'a T),
}

/// The middle of `sorted`; `None` when it is empty.
pub(crate) fn middle<T>(sorted: &[T]) -> Option<Middle<'_, T>> {
    let half = sorted.len() / 2;
    let upper = sorted.get(half)?;
    if sorted.len() % 2 == 1 {
        Some(Middle::One(upper))
    } else {
        Some(Middle::Two(sorted.get(half.checked_sub(1)?)?, upper))
    }
}

/// The median of `sorted` (in the order of `value`): the middle value, or
/// the mean of the middle two for an even count; `None` when empty.
pub(crate) fn median_by<T>(sorted: &[T], value: impl Fn(&T) -> f64) -> Option<f64> {
    Some(match middle(sorted)? {
        Middle::One(only) => value(only),
        Middle::Two(lower, upper) => (value(lower) + value(upper)) / 2.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_middle_of_odd_and_even_counts() {
        let empty: [f64; 0] = [];
        assert_eq!(middle(&empty), None);
        assert_eq!(middle(&[1.0]), Some(Middle::One(&1.0)));
        assert_eq!(middle(&[1.0, 2.0, 3.0]), Some(Middle::One(&2.0)));
        assert_eq!(middle(&[1.0, 2.0, 3.0, 4.0]), Some(Middle::Two(&2.0, &3.0)));
        assert_eq!(median_by(&empty, |&x| x), None);
        assert_eq!(median_by(&[1.0, 2.0, 4.0, 8.0], |&x| x), Some(3.0));
        assert_eq!(median_by(&[(5.0, 0), (7.0, 1)], |&(x, _)| x), Some(6.0));
    }
}
