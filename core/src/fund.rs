//! Funds and the default catalogue.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::enum_names::variant_named;
use crate::error::{Error, Invalid};
use crate::ids::FundId;
use rust_decimal_macros::dec;

named_enum! {
    /// The kind of fund.
    pub enum Category in "UPPERCASE" {
        /// Voluntary pension fund (Fondo de Pensiones Voluntarias).
        Fpv,
        /// Collective investment fund (Fondo de Inversión Colectiva).
        Fic,
    }
}

impl FromStr for Category {
    type Err = Error;

    /// `FPV` or `FIC`, in any case.
    fn from_str(text: &str) -> Result<Self, Error> {
        variant_named(text).ok_or(Error::invalid("category", Invalid::Category))
    }
}

/// An investment fund clients can subscribe to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fund {
    /// Catalogue id.
    pub id: FundId,
    /// Display name, used in messages.
    pub name: String,
    /// Smallest amount a subscription may have.
    pub minimum: Decimal,
    /// FPV or FIC.
    pub category: Category,
    /// Whether new subscriptions are accepted.
    pub active: bool,
}

impl Fund {
    /// An active fund.
    pub fn new(id: FundId, name: impl Into<String>, minimum: Decimal, category: Category) -> Self {
        Fund {
            id,
            name: name.into(),
            minimum,
            category,
            active: true,
        }
    }
}

/// The catalogue of docs/rules.md, seeded on the first open of a store unless configured otherwise.
pub fn default_catalogue() -> Vec<Fund> {
    vec![
        Fund::new(
            1,
            "FPV_BTG_PACTUAL_RECAUDADORA",
            dec!(75000.00),
            Category::Fpv,
        ),
        Fund::new(
            2,
            "FPV_BTG_PACTUAL_ECOPETROL",
            dec!(125000.00),
            Category::Fpv,
        ),
        Fund::new(3, "DEUDAPRIVADA", dec!(50000.00), Category::Fic),
        Fund::new(4, "FDO-ACCIONES", dec!(250000.00), Category::Fic),
        Fund::new(
            5,
            "FPV_BTG_PACTUAL_DINAMICA",
            dec!(100000.00),
            Category::Fpv,
        ),
    ]
}
