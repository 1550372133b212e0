//! Funds and the default catalogue.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ids::FundId;
use crate::money::cop;

/// The kind of fund.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Category {
    /// Voluntary pension fund (Fondo de Pensiones Voluntarias).
    #[serde(rename = "FPV")]
    Fpv,
    /// Collective investment fund (Fondo de Inversión Colectiva).
    #[serde(rename = "FIC")]
    Fic,
}

impl Category {
    /// `FPV` or `FIC`.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Fpv => "FPV",
            Category::Fic => "FIC",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
            cop("75000"),
            Category::Fpv,
        ),
        Fund::new(2, "FPV_BTG_PACTUAL_ECOPETROL", cop("125000"), Category::Fpv),
        Fund::new(3, "DEUDAPRIVADA", cop("50000"), Category::Fic),
        Fund::new(4, "FDO-ACCIONES", cop("250000"), Category::Fic),
        Fund::new(5, "FPV_BTG_PACTUAL_DINAMICA", cop("100000"), Category::Fpv),
    ]
}
