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

/// Declares a public enum whose variants have fixed names — in JSON, in the stores and in every
/// binding — written once, in the one `case` given: serde and strum derive from it, with
/// `as_str` (the name), `Display` and `ALL` (every variant, in order).
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident in $case:literal {
            $( $(#[$variant_meta:meta])* $variant:ident ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Clone,
            Copy,
            Debug,
            PartialEq,
            Eq,
            Hash,
            serde::Serialize,
            serde::Deserialize,
            strum::IntoStaticStr,
            strum::Display,
            strum::VariantArray,
        )]
        #[serde(rename_all = $case)]
        #[strum(serialize_all = $case)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant ),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = <Self as strum::VariantArray>::VARIANTS;

            /// The variant's name, as JSON, the stores and every binding spell it.
            pub fn as_str(self) -> &'static str {
                self.into()
            }
        }
    };
}
