//! Reading the public enums from their names (`email`, `FPV`, …): the names themselves are
//! declared once, on each enum, by `strum`.

/// The variant of `T` named `text`, ignoring ASCII case and surrounding white space.
pub(crate) fn variant_named<T>(text: &str) -> Option<T>
where
    T: strum::VariantArray + Copy + Into<&'static str>,
{
    let text = text.trim();
    T::VARIANTS.iter().copied().find(|variant| {
        let name: &'static str = (*variant).into();
        name.eq_ignore_ascii_case(text)
    })
}
